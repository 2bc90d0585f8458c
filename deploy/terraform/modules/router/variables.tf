variable "replicas" {
  description = "The gateway HPA's minimum replicas (the StatefulSet has no count of its own)."
  type        = number
  validation {
    condition     = var.replicas >= 1
    error_message = "The gateway needs at least one replica."
  }
}

variable "objects" {
  description = "The gateway's rendered objects (labelled app.kubernetes.io/component=gateway)."
  # `any`, not list(any): the objects differ in type (a StatefulSet is no Service), and a
  # list needs one element type, so list(any) refuses them.
  type = any
}
