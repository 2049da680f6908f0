#!/bin/sh
# Runs the bundled GPU check (README, "GPU engine") on a machine with an NVIDIA GPU, from the folder that holds
#   .gpu/gpu_check.js   (deno task gpu:bundle)
#   .gpu/deno.xz        (xz -T0 -9 -c "$(command -v deno)" > .gpu/deno.xz; used only when deno is not installed)
#   .gl/*.deb           (apt-get download libvulkan1; unpacked only when no Vulkan loader is installed)
# Arguments go to gpu_check.js (e.g. --out gpu_check.json). Env: DENO_WEBGPU_BACKEND (default vulkan),
# VK_DRIVER_FILES (default: the first nvidia_icd.json found in the usual places).
set -e
if ! ldconfig -p | grep -q 'libvulkan\.so\.1'; then
  for f in .gl/*.deb; do [ -f "$f" ] && dpkg -x "$f" /; done
  ldconfig
fi
DENO=$(command -v deno || true)
if [ -z "$DENO" ]; then
  xz -dc .gpu/deno.xz >/tmp/deno
  chmod +x /tmp/deno
  DENO=/tmp/deno
fi
if [ -z "$VK_DRIVER_FILES" ]; then
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
    /etc/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$icd" ]; then
      export VK_DRIVER_FILES="$icd"
      break
    fi
  done
fi
export DENO_WEBGPU_BACKEND="${DENO_WEBGPU_BACKEND:-vulkan}"
command -v nvidia-smi >/dev/null && nvidia-smi -L
echo "deno $("$DENO" --version | head -1 | cut -d' ' -f2), DENO_WEBGPU_BACKEND=$DENO_WEBGPU_BACKEND, VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}"
exec "$DENO" run -A --no-config .gpu/gpu_check.js "$@"
