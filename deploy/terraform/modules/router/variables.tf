variable "replicas" {
  description = "Gateway replicas (and the HPA's minimum)."
  type        = number
  validation {
    condition     = var.replicas >= 1
    error_message = "The gateway needs at least one replica."
  }
}

variable "objects" {
  description = "The gateway's rendered objects (labelled app.kubernetes.io/component=gateway)."
  type        = list(any)
}
