/**
 * Azure AD (Microsoft Entra ID) credentials, chosen the way the real components choose them.
 * - Dapr's components (components-contrib common/authentication/azure): client credentials (azureTenantId +
 *   azureClientId + azureClientSecret), then a client certificate (azureCertificate / azureCertificateFile), then
 *   what the machine offers — workload identity (the AZURE_* variables the AKS webhook injects), managed identity
 *   (azureClientId picks a user-assigned one), the Azure CLI. Here the last three are @azure/identity's
 *   DefaultAzureCredential, whose chain is the same. azureAuthMethods names the methods to try, in order.
 * - KEDA's podIdentity provider azure-workload (pkg/scalers/azure/azure_azidentity_chain.go): the Azure CLI (KEDA
 *   registers it where a shell exists), then workload identity with the TriggerAuthentication's identityId and
 *   identityTenantId.
 * Nothing here talks to Azure: a credential asks for a token only when the Service Bus client first needs one.
 */
import fs from 'node:fs';
import type * as IdentitySdk from '@azure/identity';
import type { TokenCredential } from '@azure/identity';
import type { FieldSpec } from '../../components/metadata.js';
import { lazyModule } from '../lazy-require.js';

const identity = lazyModule<typeof IdentitySdk>('@azure/identity');

/** components-contrib's azuread authentication profile, with the aliases its metadata-properties.go accepts. */
export const azureAdFields = [
  { name: 'azureTenantId', type: 'string', aliases: ['spnTenantId', 'tenantId'], description: 'Azure AD: the tenant of the client credentials or certificate.' },
  { name: 'azureClientId', type: 'string', aliases: ['spnClientId', 'clientId'],
    description: 'Azure AD: the application (client) id; with managed identity, picks a user-assigned identity.' },
  { name: 'azureClientSecret', type: 'string', sensitive: true, aliases: ['spnClientSecret', 'clientSecret'],
    description: 'Azure AD: the client secret (with azureTenantId and azureClientId).' },
  { name: 'azureCertificate', type: 'string', sensitive: true, aliases: ['spnCertificate'],
    description: 'Azure AD: a PEM certificate with its private key (with azureTenantId and azureClientId).' },
  { name: 'azureCertificateFile', type: 'string', aliases: ['spnCertificateFile'],
    description: 'Azure AD: the path of a PEM file holding the certificate and its private key.' },
  { name: 'azureCertificatePassword', type: 'string', sensitive: true, aliases: ['spnCertificatePassword'],
    description: 'Azure AD: the password of an encrypted certificate key.' },
  { name: 'azureEnvironment', type: 'string', aliases: ['azureCloud'],
    description: 'Azure AD: AzurePublicCloud (default), AzureChinaCloud or AzureUSGovernmentCloud.' },
  { name: 'azureAuthMethods', type: 'string', aliases: ['azureADAuthMethods', 'entraIDAuthMethods', 'microsoftEntraIDAuthMethods'],
    description: 'Azure AD: the methods to try, in order, comma-separated: ClientCredentials, ClientCertificate, ' +
      'WorkloadIdentity, ManagedIdentity, CommandLineInterface (or creds, cert, wi, mi, cli), or None.' },
] as const satisfies readonly FieldSpec[];

export type AzureAuthMethod = 'creds' | 'cert' | 'wi' | 'mi' | 'cli';

export interface AzureAdSettings {
  tenantId: string | undefined;
  clientId: string | undefined;
  clientSecret: string | undefined;
  certificate: string | undefined;
  certificateFile: string | undefined;
  certificatePassword: string | undefined;
  /** The Azure AD authority of azureEnvironment. */
  authorityHost: string;
  /** azureAuthMethods, in order; undefined: Dapr's default order. */
  methods: AzureAuthMethod[] | undefined;
}

/** What the metadata gave for the azuread profile (parsed by the component's defineMetadata). */
export interface AzureAdMetadata {
  azureTenantId: string | undefined;
  azureClientId: string | undefined;
  azureClientSecret: string | undefined;
  azureCertificate: string | undefined;
  azureCertificateFile: string | undefined;
  azureCertificatePassword: string | undefined;
  azureEnvironment: string | undefined;
  azureAuthMethods: string | undefined;
}

const AUTHORITY: Readonly<Record<string, string>> = {
  azurepubliccloud: 'https://login.microsoftonline.com', azurepublic: 'https://login.microsoftonline.com',
  azurechinacloud: 'https://login.chinacloudapi.cn', azurechina: 'https://login.chinacloudapi.cn',
  azureusgovernmentcloud: 'https://login.microsoftonline.us', azureusgovernment: 'https://login.microsoftonline.us',
};

const METHODS: Readonly<Record<string, AzureAuthMethod | 'none' | 'spiffe'>> = {
  clientcredentials: 'creds', creds: 'creds', clientcertificate: 'cert', cert: 'cert', workloadidentity: 'wi', wi: 'wi',
  managedidentity: 'mi', mi: 'mi', commandlineinterface: 'cli', cli: 'cli', none: 'none',
  spiffeworkloadidentity: 'spiffe', spiffe: 'spiffe',
};

/** A bad azuread setting: the field and what is wrong with it. */
export class AzureAdSettingError extends Error {
  constructor(readonly field: string, message: string) {
    super(message);
  }
}

/** The azuread profile as Dapr reads it; throws AzureAdSettingError where Dapr would fail at init. */
export function parseAzureAd(m: AzureAdMetadata): AzureAdSettings {
  const env = m.azureEnvironment?.trim() ?? '';
  const authorityHost = env === '' ? AUTHORITY.azurepubliccloud! : AUTHORITY[env.toLowerCase()];
  if (authorityHost === undefined) {
    throw new AzureAdSettingError('azureEnvironment', `invalid Azure cloud '${env}': use AzurePublicCloud, AzureChinaCloud or AzureUSGovernmentCloud`);
  }
  let methods: AzureAuthMethod[] | undefined;
  if (m.azureAuthMethods !== undefined && m.azureAuthMethods.trim() !== '') {
    methods = [];
    for (const raw of m.azureAuthMethods.split(',')) {
      const name = raw.trim().toLowerCase();
      const method = METHODS[name];
      if (method === undefined) throw new AzureAdSettingError('azureAuthMethods', `invalid Azure auth method '${raw.trim()}'`);
      if (method === 'none') throw new AzureAdSettingError('azureAuthMethods', "all Azure auth methods have been disabled with auth method 'None'");
      if (method === 'spiffe') {
        throw new AzureAdSettingError('azureAuthMethods', 'SPIFFE workload identity needs the SPIFFE identity of a Dapr sidecar on a cluster: not supported by qscale; use WorkloadIdentity, ManagedIdentity, ClientCredentials or CommandLineInterface');
      }
      methods.push(method);
    }
  }
  const pem = m.azureCertificate;
  if (pem !== undefined && !pem.includes('-----BEGIN')) {
    throw new AzureAdSettingError('azureCertificate', 'must be PEM (the certificate and its private key): a PFX/PKCS#12 bundle is not supported by qscale; convert it with openssl pkcs12 -in cert.pfx -out cert.pem -nodes');
  }
  const s: AzureAdSettings = {
    tenantId: m.azureTenantId, clientId: m.azureClientId, clientSecret: m.azureClientSecret,
    certificate: pem, certificateFile: m.azureCertificateFile, certificatePassword: m.azureCertificatePassword,
    authorityHost, methods,
  };
  if (methods !== undefined) {
    const why = methods.map((x) => unavailable(s, x)).filter((x): x is string => x !== undefined);
    if (why.length === methods.length) throw new AzureAdSettingError('azureAuthMethods', `no suitable token provider for Azure AD: ${why.join('; ')}`);
  }
  return s;
}

/** Why a method named in azureAuthMethods cannot be used with these settings (Dapr skips it), or undefined. */
function unavailable(s: AzureAdSettings, m: AzureAuthMethod): string | undefined {
  if (m === 'creds' && !(s.tenantId && s.clientId && s.clientSecret)) return 'client credentials need azureTenantId, azureClientId and azureClientSecret';
  if (m === 'cert' && !(s.certificate || s.certificateFile)) return 'a client certificate needs azureCertificate or azureCertificateFile';
  return undefined;
}

/** One link of the chain: what it is (for logs and errors) and the credential. */
export interface ChainLink {
  name: string;
  credential: TokenCredential;
}

/** No credential could be built (Dapr: "no suitable token provider for Azure AD"), with why for each. */
export class NoAzureCredentialError extends Error {}

/** A link whose credential cannot be built here (its settings or environment are missing) is left out, as Dapr leaves it out. */
function tryLink(name: string, build: () => TokenCredential, skipped: string[]): ChainLink[] {
  try {
    return [{ name, credential: build() }];
  } catch (err) {
    skipped.push(`${name}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    return [];
  }
}

function nonEmpty(chain: ChainLink[], skipped: readonly string[]): ChainLink[] {
  if (chain.length === 0) throw new NoAzureCredentialError(`no suitable token provider for Azure AD: ${skipped.join('; ')}`);
  return chain;
}

/** The credentials Dapr would try, in its order; throws NoAzureCredentialError when there is none. */
export function daprCredentialChain(s: AzureAdSettings): ChainLink[] {
  const id = identity();
  const opts = { authorityHost: s.authorityHost };
  const skipped: string[] = [];
  const link = (m: AzureAuthMethod): ChainLink[] => {
    const why = unavailable(s, m);
    if (why !== undefined) {
      skipped.push(why);
      return [];
    }
    switch (m) {
      case 'creds':
        return tryLink('client credentials', () => new id.ClientSecretCredential(s.tenantId!, s.clientId!, s.clientSecret!, opts), skipped);
      case 'cert': {
        const password = s.certificatePassword ? { certificatePassword: s.certificatePassword } : {};
        return tryLink('client certificate', () => (s.certificate !== undefined
          ? new id.ClientCertificateCredential(s.tenantId ?? '', s.clientId ?? '', { certificate: s.certificate, ...password }, opts)
          : new id.ClientCertificateCredential(s.tenantId ?? '', s.clientId ?? '', { certificatePath: s.certificateFile!, ...password }, opts)), skipped);
      }
      case 'wi':
        // Read from the environment the AKS webhook injects, as Dapr reads it.
        return tryLink('workload identity', () => new id.WorkloadIdentityCredential(opts), skipped);
      case 'mi':
        return tryLink('managed identity', () => new id.ManagedIdentityCredential(s.clientId ? { clientId: s.clientId } : {}), skipped);
      case 'cli':
        return tryLink('Azure CLI', () => new id.AzureCliCredential({ ...(s.tenantId ? { tenantId: s.tenantId } : {}) }), skipped);
    }
  };
  if (s.methods !== undefined) return nonEmpty(s.methods.flatMap(link), skipped);
  const chain = [...link('creds'), ...link('cert')];
  // Workload identity, managed identity, Azure CLI: DefaultAzureCredential's chain.
  chain.push({
    name: 'DefaultAzureCredential (workload identity, managed identity, Azure CLI)',
    credential: new id.DefaultAzureCredential({
      authorityHost: s.authorityHost,
      ...(s.clientId ? { managedIdentityClientId: s.clientId } : {}),
      // Dapr's workload identity reads its client id from the environment only, not from azureClientId.
      ...(process.env.AZURE_CLIENT_ID ? { workloadIdentityClientId: process.env.AZURE_CLIENT_ID } : {}),
    }),
  });
  return chain;
}

/** KEDA's podIdentity azure-workload: identityId and identityTenantId of the TriggerAuthentication. */
export interface PodIdentity {
  provider: string;
  identityId?: string;
  identityTenantId?: string;
}

/** The credentials KEDA tries for podIdentity azure-workload, in its order; throws NoAzureCredentialError when there is none. */
export function kedaWorkloadChain(p: PodIdentity): ChainLink[] {
  const id = identity();
  const skipped: string[] = [];
  const chain: ChainLink[] = [];
  if (fs.existsSync('/bin/sh')) chain.push({ name: 'Azure CLI', credential: new id.AzureCliCredential() });
  chain.push(...tryLink('workload identity', () => new id.WorkloadIdentityCredential({
    ...(p.identityId ? { clientId: p.identityId } : {}),
    ...(p.identityTenantId ? { tenantId: p.identityTenantId } : {}),
  }), skipped));
  return nonEmpty(chain, skipped);
}

/** One credential trying the links in order. */
export function chained(chain: readonly ChainLink[]): TokenCredential {
  const only = chain[0];
  return chain.length === 1 && only ? only.credential : new (identity().ChainedTokenCredential)(...chain.map((l) => l.credential));
}

export function describeChain(chain: readonly ChainLink[]): string {
  return chain.map((l) => l.name).join(', then ');
}
