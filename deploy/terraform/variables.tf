variable "manifests" {
  description = "A file with one environment's objects: kubectl kustomize out/overlays/ENV."
  type        = string
}

variable "kubeconfig" {
  type    = string
  default = "~/.kube/config"
}

variable "kube_context" {
  type    = string
  default = null
}

variable "router_replicas" {
  description = "Gateway replicas."
  type        = number
}

variable "models" {
  description = "Served models by name (rendered into ENV.tfvars.json)."
  type = map(object({
    label        = string
    quantization = string
    gpu          = bool
    footprint = object({
      parameters               = number
      weights_bytes            = number
      state_bytes_per_sequence = number
    })
  }))
}

variable "sizing" {
  description = "The engine and placement settings (rendered into ENV.tfvars.json)."
  type = object({
    slots              = number
    state_cache_bytes  = number
    overhead_bytes     = number
    memory_limit_ratio = number
    cpu_max_parameters = number
    gpu_min_parameters = number
    node_classes = list(object({
      name             = string
      accelerator      = string
      memory_bytes     = number
      cpu_cores        = number
      gpus             = number
      gpu_memory_bytes = number
    }))
  })
}
