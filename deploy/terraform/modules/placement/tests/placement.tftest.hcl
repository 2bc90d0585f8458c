# The seed's examples (tests/deploy/test_terraform.py adds cases generated from the Python rule).

run "a_7b_mamba_runs_on_cpu" {
  command = plan
  variables {
    parameters               = 7000000000
    weights_bytes            = 4294967296
    state_bytes_per_sequence = 4194304
  }
  assert {
    condition     = output.node_class == "cpu" && output.gpus == 0
    error_message = "a 7 B model belongs on a CPU node"
  }
}

run "a_30b_hybrid_runs_on_gpu" {
  command = plan
  variables {
    parameters               = 30000000000
    weights_bytes            = 18253611008
    state_bytes_per_sequence = 314572800
  }
  assert {
    condition     = output.node_class == "gpu" && output.gpus == 1
    error_message = "a 30 B model belongs on a GPU node"
  }
}

run "a_model_no_class_holds_is_refused" {
  command = plan
  variables {
    parameters               = 70000000000
    weights_bytes            = 42949672960
    state_bytes_per_sequence = 0
  }
  expect_failures = [output.node_class]
}
