variable "model_name" {
  description = "The served model name (mesh.yaml models[].name)."
  type        = string
}

variable "quantization" {
  description = "The GGUF's quantization (Q4_0, Q4_K_M, F16, ...), recorded on every object."
  type        = string
}

variable "gpu" {
  description = "Whether the model runs on a GPU node class (placement decides; checked)."
  type        = bool
}

variable "objects" {
  description = "The model's rendered objects (labelled demigod.io/model=NAME)."
  # `any`, not list(any): the objects differ in type (a StatefulSet is no Service), and a
  # list needs one element type, so list(any) refuses them.
  type = any
}

variable "footprint" {
  description = "placement.footprints entry: parameters, weights_bytes, state_bytes_per_sequence."
  type = object({
    parameters               = number
    weights_bytes            = number
    state_bytes_per_sequence = number
  })
}

variable "sizing" {
  description = "The engine and placement settings placement reads."
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
