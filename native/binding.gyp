{
  "targets": [
    {
      "target_name": "longtail_native",
      "sources": ["src/conv.cc", "src/conv512.cc", "src/conv_grad512.cc", "src/bf16.cc", "src/bn.cc", "src/memory.cc", "src/head.cc", "src/addon.cc"],
      "cflags_cc": ["-O3", "-std=c++17", "-fno-exceptions"],
      "cflags_cc!": ["-fno-rtti"],
      "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-O3", "-std=c++17"] }
    }
  ]
}
