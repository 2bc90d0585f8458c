output "node_class" {
  value = module.placement.node_class
}

output "objects" {
  value = keys(kubernetes_manifest.object)
}
