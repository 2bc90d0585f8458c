output "node_class" {
  description = "The node class the worker runs on."
  value       = local.chosen == null ? null : local.chosen.name
  precondition {
    condition     = local.chosen != null
    error_message = "No node class of the kind the parameter count allows holds this model's memory need."
  }
}

output "on_gpu" {
  value = local.chosen == null ? null : local.chosen.accelerator != "none"
}

output "gpus" {
  value = local.chosen == null ? null : local.chosen.gpus
}

output "cpu_cores" {
  value = local.chosen == null ? null : local.chosen.cpu_cores
}

output "memory_request_bytes" {
  value = local.chosen == null ? null : local.chosen.request_mib * local.mib
}

output "memory_limit_bytes" {
  value = local.chosen == null ? null : local.limit_mib * local.mib
}
