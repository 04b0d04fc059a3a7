# The native code of provisiond, built by node-gyp at `npm ci` (package.json "install" runs
# scripts/build-native.mjs): one N-API addon (plain C, node_api.h) and two helper executables that
# are separate processes by design. src/native/index.ts loads them from build/Release/.
{
  "target_defaults": {
    "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers", "-Wno-sign-compare"],
    "defines": ["_GNU_SOURCE"],
  },
  "targets": [
    {
      # In-process: the DHCP socket (udp.c) and its batched datagrams (dhcpio.c), zero-copy getfile
      # (sendfile.c). A new function goes in a file of its own, registered in addon.c.
      "target_name": "provisiond",
      "sources": ["src/native/addon.c", "src/native/udp.c", "src/native/dhcpio.c", "src/native/sendfile.c"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-lpthread"],
    },
    {
      # The nodescript spawner: forks from a small process, so the daemon never blocks in fork.
      "target_name": "provisiond-spawner",
      "type": "executable",
      "sources": ["src/native/spawner.c"],
    },
    {
      # The TFTP data pump: many transfers in one epoll loop, on the second core.
      "target_name": "provisiond-tftp-pump",
      "type": "executable",
      "sources": ["src/native/pump.c"],
    },
  ],
}
