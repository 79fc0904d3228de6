# Builds build/Release/socket_addon.node: plain Node-API plus libuv, no C++.
# Linux only: SOCK_SEQPACKET with SCM_RIGHTS, SO_PEERCRED, MSG_CMSG_CLOEXEC.
{
  "targets": [
    {
      "target_name": "socket_addon",
      "sources": [
        "src/addon.c",
        "src/handle.c",
        "src/listener.c",
        "src/connection.c",
        "src/fd-ops.c",
        "src/user-db.c",
        "src/malloc-arenas.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong"],
      "cflags!": ["-fno-exceptions"],
      "ldflags": ["-Wl,-z,relro,-z,now"]
    }
  ]
}
