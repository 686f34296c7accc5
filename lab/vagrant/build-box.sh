#!/usr/bin/env bash
# Builds the Vagrant lab's local box: Debian bookworm for libvirt, without a boot loader (the
# Vagrantfile boots its kernel directly), from the Debian mirror this machine's apt uses.
#
#   lab/vagrant/build-box.sh [OUTDIR [NAME]]   (root; default OUTDIR: $HASETUP_LAB_CACHE/vagrant
#                                               or ~/.cache/hasetup/vagrant, NAME hasetup-bookworm.box)
#
# Writes OUTDIR/NAME: box.img (qcow2, one ext4 file system, no partition table),
# vmlinuz, initrd.img and metadata.json. The box has a `vagrant` user with Vagrant's well-known
# insecure public key (Vagrant replaces it with a key of its own on first boot) and passwordless
# sudo, systemd-networkd with DHCP on eth0, sshd with host keys generated on first boot.
# Needs: mmdebstrap, e2fsprogs (mke2fs -d), qemu-utils (qemu-img), vagrant (for its public key).
set -euo pipefail

default_out="${HASETUP_LAB_CACHE:-$HOME/.cache/hasetup}/vagrant"
out="${1:-$default_out}"
name="${2:-hasetup-bookworm.box}"
suite=bookworm
size=8G
# A bootable, reachable Debian (procps: Vagrant needs ps), plus the base packages of the `common`
# role (chrony, curl, ca-certificates), so that it applies without a package mirror: the lab's
# networks are isolated.
packages=linux-image-cloud-amd64,systemd-sysv,udev,openssh-server,sudo,iproute2,procps,dbus,netbase,iputils-ping,chrony,curl,ca-certificates

for c in mmdebstrap mke2fs qemu-img tar apt-get; do
  command -v "$c" >/dev/null || { echo "build-box: needs $c" >&2; exit 1; }
done

# The insecure public key Vagrant ships (Debian's package, or HashiCorp's in /opt/vagrant).
pubkey=""
for k in /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub /opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub /usr/share/vagrant/keys/vagrant.pub; do
  if [ -f "$k" ]; then pubkey="$k"; fi
done
[ -n "$pubkey" ] || { echo "build-box: cannot find vagrant's keys/vagrant.pub (is vagrant installed?)" >&2; exit 1; }

# The Debian mirror(s) from this machine's apt configuration, moved to $suite when the machine runs
# another release: one "deb URI SUITE main" line per repository apt knows.
host_codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
sources=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' 2>/dev/null | sort -u |
  while read -r uri release; do
    case "$release" in
      */*) continue ;; # flat repositories (e.g. local ones) are not Debian archives
    esac
    [ -n "$host_codename" ] && release="${release/#$host_codename/$suite}"
    case "$release" in
      "$suite" | "$suite"-updates | "$suite"-security) echo "deb $uri $release main" ;;
    esac
  done | sort -u)
[ -n "$sources" ] || { echo "build-box: no Debian $suite repository in this machine's apt configuration (apt-get update?)" >&2; exit 1; }

mkdir -p "$out"
work=$(mktemp -d "$out/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
mkdir "$rootfs"

printf '%s\n' "$sources" >"$work/sources.list"
cp "$pubkey" "$work/vagrant.pub"

echo "build-box: mmdebstrap $suite ($packages)" >&2
mmdebstrap --variant=minbase --include="$packages" \
  --customize-hook='
    set -e
    r="$1"
    chroot "$r" useradd --create-home --shell /bin/bash --user-group vagrant
    install -d -m 0700 "$r/home/vagrant/.ssh"
    install -m 0600 "'"$work"'/vagrant.pub" "$r/home/vagrant/.ssh/authorized_keys"
    chroot "$r" chown -R vagrant:vagrant /home/vagrant/.ssh
    echo "vagrant ALL=(ALL) NOPASSWD: ALL" >"$r/etc/sudoers.d/vagrant"
    chmod 0440 "$r/etc/sudoers.d/vagrant"
    printf "[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\n\n[DHCPv4]\nClientIdentifier=mac\n" >"$r/etc/systemd/network/10-eth0.network"
    printf "/dev/vda / ext4 rw,errors=remount-ro 0 1\n" >"$r/etc/fstab"
    printf "localhost\n" >"$r/etc/hostname"
    printf "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n" >"$r/etc/hosts"
    # every VM gets host keys of its own, made on first boot (no RSA: slow to make under emulation)
    rm -f "$r"/etc/ssh/ssh_host_*
    printf "HostKey /etc/ssh/ssh_host_ed25519_key\nHostKey /etc/ssh/ssh_host_ecdsa_key\n" >"$r/etc/ssh/sshd_config.d/10-hostkeys.conf"
    printf "[Unit]\nDescription=SSH host keys\nBefore=ssh.service\nConditionPathExists=!/etc/ssh/ssh_host_ed25519_key\n\n[Service]\nType=oneshot\nExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N \"\" -f /etc/ssh/ssh_host_ed25519_key\nExecStart=/usr/bin/ssh-keygen -q -t ecdsa -N \"\" -f /etc/ssh/ssh_host_ecdsa_key\n\n[Install]\nWantedBy=multi-user.target\n" >"$r/etc/systemd/system/ssh-hostkeys.service"
    chroot "$r" systemctl enable systemd-networkd.service ssh.service ssh-hostkeys.service
    # nothing that competes with provisioning at boot: file system scrubs, apt timers
    chroot "$r" systemctl mask e2scrub_reap.service e2scrub_all.timer apt-daily.timer apt-daily-upgrade.timer
    # a small initramfs (the root file system is ext4 on virtio, ext4 is built into the kernel)
    sed -i "s/^MODULES=.*/MODULES=list/" "$r/etc/initramfs-tools/initramfs.conf"
    printf "virtio_pci\nvirtio_blk\nvirtio_net\n" >>"$r/etc/initramfs-tools/modules"
    chroot "$r" update-initramfs -u -k all
    : >"$r/etc/machine-id"
    rm -f "$r/var/lib/dbus/machine-id"
    rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/*_Packages
  ' \
  "$suite" "$rootfs" - <"$work/sources.list"

echo "build-box: ext4 image and qcow2" >&2
kernel=$(readlink -f "$rootfs/vmlinuz")
initrd=$(readlink -f "$rootfs/initrd.img")
mkdir "$work/box"
cp "$kernel" "$work/box/vmlinuz"
cp "$initrd" "$work/box/initrd.img"
chmod 0644 "$work/box/vmlinuz" "$work/box/initrd.img"
truncate -s "$size" "$work/disk.raw"
mke2fs -q -t ext4 -L root -d "$rootfs" "$work/disk.raw"
qemu-img convert -f raw -O qcow2 "$work/disk.raw" "$work/box/box.img"
rm -f "$work/disk.raw"
printf '{"provider":"libvirt","format":"qcow2","virtual_size":%s}\n' "${size%G}" >"$work/box/metadata.json"
tar -C "$work/box" -cf "$work/$name" metadata.json box.img vmlinuz initrd.img
mv "$work/$name" "$out/$name"
echo "build-box: $out/$name" >&2
