{
  "targets": [
    {
      "target_name": "forkbox_vmm",
      "sources": [
        "native/binding/addon.c",
        "<!@(ls -1 native/vmm/*.c)"
      ],
      "include_dirs": ["native/include"],
      "cflags_c": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-fvisibility=hidden"],
      "libraries": ["-lpthread"]
    }
  ]
}
