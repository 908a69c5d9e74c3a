// The Kubernetes kinds deploy/ uses, with their kubernetes-models classes (JSON schema
// validation) and interfaces (the fields each kind has: test/helpers/kubernetes.ts's
// unknownFields reads them with the TypeScript checker, as the API server's strict field
// validation would refuse a misspelt field the schemas let through).
import { ConfigMap, Secret, Service, ServiceAccount, type IConfigMap, type ISecret, type IService, type IServiceAccount } from 'kubernetes-models/v1'
import { Deployment, StatefulSet, type IDeployment, type IStatefulSet } from 'kubernetes-models/apps/v1'
import { PodDisruptionBudget, type IPodDisruptionBudget } from 'kubernetes-models/policy/v1'

export const MODELS = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget
} as const

/** The same kinds, as their interfaces: the keys must match MODELS'. */
export interface Kinds {
  'v1/ConfigMap': IConfigMap
  'v1/Secret': ISecret
  'v1/Service': IService
  'v1/ServiceAccount': IServiceAccount
  'apps/v1/Deployment': IDeployment
  'apps/v1/StatefulSet': IStatefulSet
  'policy/v1/PodDisruptionBudget': IPodDisruptionBudget
}
