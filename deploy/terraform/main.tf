# DemiGod on Kubernetes through Terraform (the seed's shape: module "router" and one
# module per model). The objects are those `demigod deploy render k8s` renders, built for
# one environment:
#
#   demigod deploy render k8s --out out
#   kubectl kustomize out/overlays/prod > prod.yaml
#   terraform apply -var-file=out/terraform/prod.tfvars.json -var manifests=prod.yaml

terraform {
  required_version = ">= 1.8"
  required_providers {
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.27"
    }
  }
}

provider "kubernetes" {
  config_path    = var.kubeconfig
  config_context = var.kube_context
}

locals {
  objects = provider::kubernetes::manifest_decode_multi(file(var.manifests))
  component = {
    for o in local.objects : "${o.kind}/${o.metadata.name}" => lookup(lookup(o.metadata, "labels", {}), "app.kubernetes.io/component", "")
  }
  model_of = {
    for o in local.objects : "${o.kind}/${o.metadata.name}" => lookup(lookup(o.metadata, "labels", {}), "demigod.io/model", "")
  }
}

module "router" {
  source   = "./modules/router"
  replicas = var.router_replicas
  objects  = [for o in local.objects : o if local.component["${o.kind}/${o.metadata.name}"] == "gateway"]
}

module "model" {
  source       = "./modules/model"
  for_each     = var.models
  model_name   = each.key
  quantization = each.value.quantization
  gpu          = each.value.gpu
  footprint    = each.value.footprint
  sizing       = var.sizing
  objects      = [for o in local.objects : o if local.model_of["${o.kind}/${o.metadata.name}"] == each.value.label]
}

# NetworkPolicies, the ServiceMonitor and the PrometheusRule: neither router nor model.
resource "kubernetes_manifest" "shared" {
  for_each = {
    for o in local.objects : "${o.kind}/${o.metadata.name}" => o
    if !contains(["gateway", "worker"], local.component["${o.kind}/${o.metadata.name}"])
  }
  manifest = each.value
}
