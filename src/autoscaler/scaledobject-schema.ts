/**
 * The fields of a keda.sh/v1alpha1 ScaledObject that a cluster accepts (KEDA's CRD), plus the enums the
 * Kubernetes API server enforces when KEDA creates the HPA (policy type, selectPolicy): a behavior the HPA would
 * refuse is refused here, at load time, with its line. test/autoscaler/crd.test.ts compares this with the CRD.
 */
import type { Schema } from './schema.js';

const int = (minimum?: number, maximum?: number): Schema => ({ type: 'integer', minimum, maximum });
const str: Schema = { type: 'string' };

/** autoscaling/v2 HPAScalingRules. */
const scalingRules: Schema = {
  type: 'object',
  properties: {
    policies: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          type: { type: 'string', enum: ['Pods', 'Percent'] },
          value: int(1),
          periodSeconds: int(1, 1800),
        },
        required: ['periodSeconds', 'type', 'value'],
      },
    },
    selectPolicy: { type: 'string', enum: ['Max', 'Min', 'Disabled'] },
    stabilizationWindowSeconds: int(0, 3600),
    tolerance: { type: 'quantity' },
  },
};

/** Enums qscale enforces where the CRD has none (the HPA API validates them when KEDA creates the HPA). */
export const HPA_ENFORCED_ENUMS: readonly string[] = [
  'spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleUp.policies.type',
  'spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleUp.selectPolicy',
  'spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.policies.type',
  'spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.selectPolicy',
  'spec.triggers.metricType',
];

export const FALLBACK_BEHAVIORS = ['static', 'currentReplicas', 'currentReplicasIfHigher', 'currentReplicasIfLower', 'scalingModifiers'] as const;

export const SCALEDOBJECT_SPEC: Schema = {
  type: 'object',
  required: ['scaleTargetRef', 'triggers'],
  properties: {
    scaleTargetRef: {
      type: 'object',
      required: ['name'],
      properties: { apiVersion: str, kind: str, name: str, envSourceContainerName: str },
    },
    pollingInterval: int(1),
    cooldownPeriod: int(0),
    initialCooldownPeriod: int(0),
    idleReplicaCount: int(0),
    minReplicaCount: int(0),
    maxReplicaCount: int(1),
    fallback: {
      type: 'object',
      required: ['failureThreshold', 'replicas'],
      properties: {
        failureThreshold: int(0),
        replicas: int(0),
        behavior: { type: 'string', enum: FALLBACK_BEHAVIORS },
      },
    },
    advanced: {
      type: 'object',
      properties: {
        horizontalPodAutoscalerConfig: {
          type: 'object',
          properties: {
            name: str,
            behavior: { type: 'object', properties: { scaleUp: scalingRules, scaleDown: scalingRules } },
          },
        },
        restoreToOriginalReplicaCount: { type: 'boolean' },
        scalingModifiers: {
          type: 'object',
          properties: {
            formula: str,
            target: str,
            activationTarget: str,
            metricType: { type: 'string', enum: ['AverageValue', 'Value'] },
          },
        },
      },
    },
    triggers: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['metadata', 'type'],
        properties: {
          type: str,
          name: str,
          metadata: { type: 'map', values: str },
          authenticationRef: {
            type: 'object',
            required: ['name'],
            properties: { name: str, kind: { type: 'string', enum: ['TriggerAuthentication', 'ClusterTriggerAuthentication'] } },
          },
          // The HPA accepts AverageValue and Value for external metrics; Utilization only for cpu/memory.
          metricType: { type: 'string', enum: ['AverageValue', 'Value', 'Utilization'] },
          useCachedMetrics: { type: 'boolean' },
        },
      },
    },
  },
};

export const SCALEDOBJECT_DOC: Schema = {
  type: 'object',
  required: ['spec'],
  properties: { apiVersion: str, kind: str, metadata: { type: 'any' }, spec: SCALEDOBJECT_SPEC, status: { type: 'any' } },
};
