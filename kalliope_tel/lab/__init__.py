"""The lab: a real Asterisk 22 in a cached Debian sid chroot, on loopback."""
