# Placement and sizing of one model's worker: the rule of demigod.deploy.placement, in HCL,
# provider-free so `terraform test` runs it offline. tests/deploy/test_terraform.py checks
# that it agrees with the Python rule on generated cases.
#
# <= cpu_max_parameters: a CPU class; > gpu_min_parameters: a GPU class; in between the
# smallest CPU class that holds the memory need, else the smallest GPU class.

terraform {
  required_version = ">= 1.6"
}

locals {
  mib            = 1048576
  slot_states    = var.state_bytes_per_sequence * var.slots
  host           = var.weights_bytes + local.slot_states + var.state_cache_bytes + var.overhead_bytes
  device         = var.weights_bytes + local.slot_states + var.overhead_bytes
  host_offloaded = local.slot_states + var.state_cache_bytes + var.overhead_bytes

  allowed = (
    var.parameters <= var.cpu_max_parameters ? ["none"] :
    var.parameters > var.gpu_min_parameters ? ["nvidia"] : ["none", "nvidia"]
  )

  sized = {
    for c in var.node_classes : c.name => {
      name         = c.name
      accelerator  = c.accelerator
      cpu_cores    = c.cpu_cores
      gpus         = c.accelerator == "none" ? 0 : ceil(local.device / c.gpu_memory_bytes)
      gpus_allowed = c.gpus
      request_mib  = ceil((c.accelerator == "none" ? local.host : local.host_offloaded) / local.mib)
      capacity_mib = floor(c.memory_bytes / local.mib)
      # Smallest first: GPU memory, then RAM, then the name.
      order = format("%020d/%020d/%s", c.gpus * c.gpu_memory_bytes, c.memory_bytes, c.name)
    }
  }

  fitting = {
    for name, s in local.sized : s.order => s
    if contains(local.allowed, s.accelerator) && s.request_mib <= s.capacity_mib && s.gpus <= s.gpus_allowed
  }
  # CPU classes before GPU classes (the middle band prefers CPU), each smallest first.
  ranked = concat(
    [for key in sort(keys(local.fitting)) : local.fitting[key] if local.fitting[key].accelerator == "none"],
    [for key in sort(keys(local.fitting)) : local.fitting[key] if local.fitting[key].accelerator != "none"],
  )
  chosen    = length(local.ranked) > 0 ? local.ranked[0] : null
  limit_mib = local.chosen == null ? 0 : min(ceil(local.chosen.request_mib * var.memory_limit_ratio), local.chosen.capacity_mib)
}
