#!/bin/bash
# Shared by build-image.sh and make-bundle.sh: fill DIR with a minimal busybox root filesystem.
# Usage (sourced): make_rootfs DIR
# Holds /bin/busybox (Debian's busybox-static), one symlink per applet from `busybox --list-full`,
# /etc/passwd, /etc/group, /etc/hosts, /tmp (1777) and /root. Nothing depends on the host's time or
# users, so the same busybox gives the same tree.

busybox_binary() {
	local b
	for b in "${BUSYBOX:-}" /usr/bin/busybox /bin/busybox; do
		if [ -n "$b" ] && [ -x "$b" ]; then
			# Only a static busybox works in an empty root filesystem.
			if command -v file >/dev/null && file -L "$b" 2>/dev/null | grep -q 'dynamically linked'; then
				continue
			fi
			echo "$b"
			return 0
		fi
	done
	echo "rootfs.sh: no static busybox found (apt-get install busybox-static, or set BUSYBOX)" >&2
	return 1
}

make_rootfs() {
	local dir="$1" bb applet
	bb="$(busybox_binary)" || return 1
	mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp}
	chmod 1777 "$dir/tmp"
	chmod 0700 "$dir/root"
	install -m 0755 "$bb" "$dir/bin/busybox"
	# One symlink per applet, at the path busybox itself lists (bin/sh, usr/bin/env, sbin/ip ...).
	while read -r applet; do
		[ -n "$applet" ] || continue
		[ "$applet" = "bin/busybox" ] && continue
		[ -d "$dir/${applet%/*}" ] || mkdir -p "$dir/${applet%/*}"
		ln -sfn /bin/busybox "$dir/$applet"
	done < <("$bb" --list-full | sort)
	printf '%s\n' \
		'root:x:0:0:root:/root:/bin/sh' \
		'daemon:x:1:1:daemon:/usr/sbin:/bin/false' \
		'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$dir/etc/passwd"
	printf '%s\n' 'root:x:0:' 'daemon:x:1:' 'nogroup:x:65534:' >"$dir/etc/group"
	printf '%s\n' '127.0.0.1	localhost' '::1	localhost ip6-localhost ip6-loopback' >"$dir/etc/hosts"
	chmod 0644 "$dir/etc/passwd" "$dir/etc/group" "$dir/etc/hosts"
}
