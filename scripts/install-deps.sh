#!/usr/bin/env bash
# Installs what kiln's tests and demo use on a Debian bookworm machine, as
# root: the CNCF distribution registry, podman (with runc), skopeo, umoci,
# debootstrap, qemu-user-static (the arm64 parent's debootstrap and arm64
# containers run under QEMU; the tests register its binfmt_misc handler
# themselves), the Debian tools the apt tests use, and python3 with pip and
# venv for the differential tests against pip. Idempotent.
set -euo pipefail

packages=(podman runc skopeo umoci docker-registry debootstrap qemu-user-static uidmap fakeroot
          dpkg-dev apt-utils gnupg util-linux make git ca-certificates xz-utils
          python3 python3-pip python3-venv)

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: run as root (sudo make deps)" >&2
	exit 1
fi
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "install-deps: installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi
# podman on these machines needs these settings (the tests also pass them in
# a private containers.conf, so this is for people running podman by hand).
if [ ! -e /etc/containers/containers.conf ]; then
	mkdir -p /etc/containers
	cat >/etc/containers/containers.conf <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
fi
echo "install-deps: ready"
