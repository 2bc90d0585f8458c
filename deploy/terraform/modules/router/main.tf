# The gateway (the seed's "router"): its StatefulSet, Service, PodDisruptionBudget and HPA as
# rendered, with `replicas` as the StatefulSet's size and the HPA's floor.

terraform {
  required_version = ">= 1.8"
  required_providers {
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.27"
    }
  }
}

locals {
  sized = {
    for o in var.objects : "${o.kind}/${o.metadata.name}" => (
      o.kind == "StatefulSet" ? merge(o, { spec = merge(o.spec, { replicas = var.replicas }) }) :
      o.kind == "HorizontalPodAutoscaler" ? merge(o, {
        spec = merge(o.spec, { minReplicas = var.replicas, maxReplicas = max(var.replicas, o.spec.maxReplicas) })
      }) : o
    )
  }
}

resource "kubernetes_manifest" "object" {
  for_each = local.sized
  manifest = each.value
}
