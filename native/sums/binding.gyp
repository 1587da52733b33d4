{
  "targets": [
    {
      "target_name": "cargoport_sums",
      "sources": ["sums.c"],
      "cflags": ["-O3", "-std=c11", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
