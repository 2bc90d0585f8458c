output "objects" {
  value = keys(kubernetes_manifest.object)
}
