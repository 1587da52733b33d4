{
  "targets": [
    {
      "target_name": "cargoport_flowlabel",
      "sources": ["flowlabel.c"],
      "cflags": ["-O2", "-std=gnu11", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
