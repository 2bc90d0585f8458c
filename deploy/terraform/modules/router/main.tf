# The gateway (the seed's "router"): its StatefulSet, Service, PodDisruptionBudget and HPA as
# rendered, with `replicas` as the HPA's floor. The HPA alone sizes the StatefulSet: its
# `spec.replicas` is never applied (a rendered one is dropped), or every apply would reset
# the count the HPA chose, and it is a computed field, so a scale between plan and apply
# is no inconsistent result.

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
  # Every object without a `spec.replicas`; the HPA with `replicas` as its floor.
  sized = {
    for o in var.objects : "${o.kind}/${o.metadata.name}" => merge(o, {
      spec = merge(
        { for k, v in o.spec : k => v if k != "replicas" },
        o.kind == "HorizontalPodAutoscaler" ? {
          minReplicas = var.replicas
          maxReplicas = max(var.replicas, lookup(o.spec, "maxReplicas", var.replicas))
        } : {},
      )
    })
  }
}

resource "kubernetes_manifest" "object" {
  for_each = local.sized
  manifest = each.value
  # The provider's defaults (labels, annotations) and the autoscaler's replica count.
  computed_fields = ["metadata.annotations", "metadata.labels", "spec.replicas"]
}
