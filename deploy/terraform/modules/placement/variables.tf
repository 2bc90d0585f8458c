variable "parameters" {
  description = "The model's parameter count."
  type        = number
}

variable "weights_bytes" {
  description = "The GGUF file's size."
  type        = number
}

variable "state_bytes_per_sequence" {
  description = "One sequence's state at n_ctx tokens (hybrids: with their KV cells)."
  type        = number
}

variable "slots" {
  description = "engine.slots: sequences decoded together, one live state each."
  type        = number
  default     = 8
}

variable "state_cache_bytes" {
  description = "engine.state_cache.ram_bytes (0 when the cache is off)."
  type        = number
  default     = 268435456
}

variable "overhead_bytes" {
  description = "placement.overhead_bytes: Python, llama.cpp compute buffers."
  type        = number
  default     = 536870912
}

variable "memory_limit_ratio" {
  description = "placement.memory_limit_ratio: limit = request x this, capped by the class."
  type        = number
  default     = 1.25
}

variable "cpu_max_parameters" {
  type    = number
  default = 7000000000
}

variable "gpu_min_parameters" {
  type    = number
  default = 12000000000
}

variable "node_classes" {
  description = "placement.node_classes of mesh.yaml."
  type = list(object({
    name             = string
    accelerator      = string
    memory_bytes     = number
    cpu_cores        = number
    gpus             = number
    gpu_memory_bytes = number
  }))
  default = [
    { name = "cpu", accelerator = "none", memory_bytes = 34359738368, cpu_cores = 8, gpus = 0, gpu_memory_bytes = 0 },
    { name = "gpu", accelerator = "nvidia", memory_bytes = 68719476736, cpu_cores = 8, gpus = 1, gpu_memory_bytes = 25769803776 },
  ]
}
