# One served model: its worker Deployment, Service, PodDisruptionBudget and ScaledObject
# (or HPA), as `demigod deploy render k8s` rendered them, applied with kubernetes_manifest.
# The ScaledObject (or HPA) owns the Deployment's replica count: a `spec.replicas` in the
# objects is dropped and the field is computed, so no apply resets the autoscaler's choice.
# The placement module recomputes where the model belongs; preconditions refuse to apply
# manifests that disagree with it (rendered from a different mesh.yaml, or edited by hand).

terraform {
  required_version = ">= 1.8"
  required_providers {
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.27"
    }
  }
}

module "placement" {
  source                   = "../placement"
  parameters               = var.footprint.parameters
  weights_bytes            = var.footprint.weights_bytes
  state_bytes_per_sequence = var.footprint.state_bytes_per_sequence
  slots                    = var.sizing.slots
  state_cache_bytes        = var.sizing.state_cache_bytes
  overhead_bytes           = var.sizing.overhead_bytes
  memory_limit_ratio       = var.sizing.memory_limit_ratio
  cpu_max_parameters       = var.sizing.cpu_max_parameters
  gpu_min_parameters       = var.sizing.gpu_min_parameters
  node_classes             = var.sizing.node_classes
}

locals {
  deployments = [for o in var.objects : o if o.kind == "Deployment"]
  gpu_limits = [
    for d in local.deployments : lookup(d.spec.template.spec.containers[0].resources.limits, "nvidia.com/gpu", "0")
  ]
  memory_requests = [for d in local.deployments : d.spec.template.spec.containers[0].resources.requests.memory]
  # The objects as applied: without `spec.replicas` (the autoscaler's), quantization annotated.
  manifests = {
    for o in var.objects : "${o.kind}/${o.metadata.name}" => merge(o, {
      spec = { for k, v in o.spec : k => v if k != "replicas" }
      metadata = merge(o.metadata, {
        annotations = merge(lookup(o.metadata, "annotations", {}), {
          "demigod.io/quantization" = var.quantization
        })
      })
    })
  }
}

resource "kubernetes_manifest" "object" {
  for_each = local.manifests
  manifest = each.value
  # The provider's defaults (labels, annotations) and the autoscaler's replica count.
  computed_fields = ["metadata.annotations", "metadata.labels", "spec.replicas"]

  lifecycle {
    precondition {
      condition     = var.gpu == module.placement.on_gpu
      error_message = "gpu = ${var.gpu}, but placement puts ${var.model_name} on ${module.placement.node_class}."
    }
    precondition {
      condition     = alltrue([for g in local.gpu_limits : tonumber(g) == module.placement.gpus])
      error_message = "The rendered GPU limits of ${var.model_name} differ from placement's ${module.placement.gpus}."
    }
    precondition {
      condition     = alltrue([for m in local.memory_requests : m == "${floor(module.placement.memory_request_bytes / 1048576)}Mi"])
      error_message = "The rendered memory requests of ${var.model_name} differ from placement's."
    }
  }
}
