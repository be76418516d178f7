/** YAML shared by the autoscaler tests. */

/** The seed's consumer-scaling.yaml, as written for KEDA 1.x. */
export const SEED_SCALEDOBJECT = `apiVersion: keda.k8s.io/v1alpha1
kind: ScaledObject
metadata:
  name: bindingconsumer-scaler
  labels:
    app: bindingconsumer
    deploymentName: consumer
spec:
  scaleTargetRef:
    deploymentName: consumer
  minReplicaCount: 0
  maxReplicaCount: 10
  triggers:
  - type: azure-servicebus
    metadata:
      queueName: msgqueue
      queueLength: '5'
    authenticationRef:
      name: trigger-auth-servicebus
`;
