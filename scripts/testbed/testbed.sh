#!/usr/bin/env bash
# A NAT testbed of network namespaces (issue 19): a public "internet" router, the coordinator and
# two relay-capable peers on public addresses, three homes behind nftables NAT (two with
# endpoint-independent mapping, one symmetric-like), peers and a requester behind them, and
# `tc netem` delay and loss between the regions. Run as root. Nothing leaves the namespaces:
# addresses are in 100.64.0.0/10 (public side) and 10.0.0.0/8 (homes), and no namespace has a
# link to the host's network.
#
#   scripts/testbed/testbed.sh up            build everything (tears down a previous one first)
#   scripts/testbed/testbed.sh down          kill every process in the namespaces, delete them
#   scripts/testbed/testbed.sh exec NS CMD…  run CMD in namespace NS (`es-coord`, `es-h1-p1`, …)
#   scripts/testbed/testbed.sh list          the namespaces and their addresses
#   scripts/testbed/testbed.sh cut NAME…     cut homes or public hosts (h1, relay, …) off the
#                                            internet router: every packet through their links
#                                            dropped, established connections included
#   scripts/testbed/testbed.sh heal [NAME…]  undo `cut` (all cuts without NAME); prints the
#                                            packets each cut dropped
#
# Layout (one-way delays added on each region's link to the internet router):
#   es-inet     router, 100.64.R.1 on each link
#   es-coord    coordinator     100.64.1.2      region eu, 10 ms
#   es-relay    public peer     100.64.2.2      region us, 40 ms
#   es-relay2   public peer     100.64.3.2      region ap, 75 ms
#   es-h1-rt    home 1 router   100.64.11.2 / 10.1.0.1   eu, 10 ms, NAT endpoint-independent
#   es-h1-p1..4 peers           10.1.0.11 … 10.1.0.14
#   es-h2-rt    home 2 router   100.64.12.2 / 10.2.0.1   us, 40 ms, NAT symmetric-like
#                               (masquerade random,fully-random: a new port per destination)
#   es-h2-p1..4 peers           10.2.0.11 … 10.2.0.14
#   es-h3-rt    home 3 router   100.64.13.2 / 10.3.0.1   ap, 75 ms, NAT endpoint-independent
#   es-h3-p1..4 peers           10.3.0.11 … 10.3.0.14
#   es-h3-req   requester       10.3.0.20
# Inside a home, peers reach each other on the LAN (bridged frames pass the router's forward
# chain when br_netfilter is on, so the LAN is allowed there). Every home router forwards only
# what its LAN started (conntrack: established,related), so
# unsolicited inbound is dropped; loss is 1 % on each region's downlink. Kernels without the netem
# qdisc (Firecracker guests, say) get no delay: the loss is then an nftables rule on es-inet.
# Environment: TESTBED_LOSS (default 1%), TESTBED_NO_NETEM=1 to skip netem, TESTBED_PREFIX (default
# es-) the namespaces' prefix: the tests bring up a second testbed beside the first under another
# (tests/common/testbed.rs).
set -Eeuo pipefail

PREFIX=${TESTBED_PREFIX:-es-}
LOSS=${TESTBED_LOSS:-1%}

# name:link-number:delay-ms
PUBLIC=("coord:1:10" "relay:2:40" "relay2:3:75")
# home:link-number:delay-ms:nat(eim|sym):members
# Twelve peer namespaces behind NAT (issue 19 asks for at least 12); a test starts peers in the
# ones it needs (tests/common/testbed.rs).
HOMES=("h1:11:10:eim:p1 p2 p3 p4" "h2:12:40:sym:p1 p2 p3 p4" "h3:13:75:eim:p1 p2 p3 p4 req")

die() { echo "testbed: $*" >&2; exit 1; }

need_tools() {
  [ "$(id -u)" = 0 ] || die "run as root"
  command -v ip >/dev/null || die "ip (iproute2) missing"
  command -v tc >/dev/null || die "tc (iproute2) missing"
  if ! command -v nft >/dev/null; then
    echo "testbed: installing nftables" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nftables >&2 \
      || { DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 &&
           DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nftables >&2; } \
      || die "nftables could not be installed"
  fi
}

ns() { ip netns exec "$PREFIX$1" "${@:2}"; }

our_namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX" || true; }

down() {
  local n pids
  for n in $(our_namespaces); do
    pids=$(ip netns pids "$n" 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
  done
  for n in $(our_namespaces); do
    ip netns del "$n" 2>/dev/null || true
  done
  # Deleting a namespace deletes its veth ends; nothing is left in the host's namespace.
  return 0
}

# link A B ifA ifB: a veth pair between namespaces A and B.
link() {
  ip link add "$3" netns "$PREFIX$1" type veth peer name "$4" netns "$PREFIX$2"
  ns "$1" ip link set "$3" up
  ns "$2" ip link set "$4" up
}

NETEM=unknown
netem_available() {
  if [ "$NETEM" = unknown ]; then
    if ns inet tc qdisc add dev lo root netem delay 1ms 2>/dev/null; then
      ns inet tc qdisc del dev lo root
      NETEM=yes
    else
      NETEM=no
      echo "testbed: this kernel has no netem qdisc (sch_netem): links get no delay;" \
        "loss is dropped by nftables instead" >&2
    fi
  fi
  [ "$NETEM" = yes ]
}

# netem NS IF DELAY_MS LOSS: one-way delay (and loss) on IF's egress. Without netem in the
# kernel, the loss is an nftables rule on the internet router (numgen random) and there is no
# delay.
netem() {
  [ "${TESTBED_NO_NETEM:-0}" = 1 ] && return 0
  if netem_available; then
    if [ "$4" = 0 ]; then
      ns "$1" tc qdisc replace dev "$2" root netem delay "${3}ms" limit 10000
    else
      ns "$1" tc qdisc replace dev "$2" root netem delay "${3}ms" loss "$4" limit 10000
    fi
  elif [ "$4" != 0 ] && [ "$1" = inet ]; then
    ns inet nft add rule inet loss forward oifname "$2" numgen random mod 1000 \
      "<" "$(loss_per_mille "$4")" counter drop
  fi
}

loss_per_mille() { # 1% -> 10, 0.5% -> 5
  awk -v l="${1%\%}" 'BEGIN { printf "%d", l * 10 }'
}

new_ns() {
  ip netns add "$PREFIX$1"
  ns "$1" ip link set lo up
}

up() {
  need_tools
  down
  trap 'echo "testbed: setup failed; tearing down" >&2; down' ERR
  new_ns inet
  ns inet sysctl -qw net.ipv4.ip_forward=1
  ns inet nft -f - <<NFT
table inet loss {
  chain forward { type filter hook forward priority filter; policy accept; }
}
NFT
  local entry name num delay home nat members m i rt
  for entry in "${PUBLIC[@]}"; do
    IFS=: read -r name num delay <<<"$entry"
    new_ns "$name"
    link inet "$name" "l$num" wan
    ns inet ip addr add "100.64.$num.1/24" dev "l$num"
    ns "$name" ip addr add "100.64.$num.2/24" dev wan
    ns "$name" ip route add default via "100.64.$num.1"
    netem inet "l$num" "$delay" "$LOSS"
    netem "$name" wan "$delay" 0
  done
  for entry in "${HOMES[@]}"; do
    IFS=: read -r home num delay nat members <<<"$entry"
    rt="$home-rt"
    new_ns "$rt"
    link inet "$rt" "l$num" wan
    ns inet ip addr add "100.64.$num.1/24" dev "l$num"
    ns "$rt" ip addr add "100.64.$num.2/24" dev wan
    ns "$rt" ip route add default via "100.64.$num.1"
    ns "$rt" sysctl -qw net.ipv4.ip_forward=1
    netem inet "l$num" "$delay" "$LOSS"
    netem "$rt" wan "$delay" 0
    ns "$rt" ip link add lan type bridge
    ns "$rt" ip addr add "10.${home#h}.0.1/24" dev lan
    ns "$rt" ip link set lan up
    i=0
    for m in $members; do
      i=$((i + 1))
      new_ns "$home-$m"
      link "$rt" "$home-$m" "v$m" eth0
      ns "$rt" ip link set "v$m" master lan
      local host=$((10 + i)); [ "$m" = req ] && host=20
      ns "$home-$m" ip addr add "10.${home#h}.0.$host/24" dev eth0
      ns "$home-$m" ip route add default via "10.${home#h}.0.1"
    done
    local masq="masquerade"
    [ "$nat" = sym ] && masq="masquerade random,fully-random"
    ns "$rt" nft -f - <<NFT
table ip nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" $masq
  }
}
table inet filter {
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "lan" oifname "wan" accept
    ip saddr 10.${home#h}.0.0/24 ip daddr 10.${home#h}.0.0/24 accept
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "wan" ct state established,related accept
    iifname "wan" icmp type echo-request accept
    iifname "wan" drop
  }
}
NFT
  done
  trap - ERR
  echo "testbed up: $(our_namespaces | wc -l) namespaces" >&2
}

# The es-inet link number of a home or public host (h1 -> 11, relay -> 2).
link_of() {
  local entry name num rest
  for entry in "${PUBLIC[@]}" "${HOMES[@]}"; do
    IFS=: read -r name num rest <<<"$entry"
    [ "$name" = "$1" ] && { echo "$num"; return 0; }
  done
  die "no home or public host named $1"
}

# A region cut: a table of its own on the internet router, dropping (and counting) everything
# forwarded to or from the link, so `heal` deletes exactly it.
cut() {
  local name num
  for name in "$@"; do
    num=$(link_of "$name")
    ns inet nft -f - <<NFT
table inet cut_$name {
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    iifname "l$num" counter drop
    oifname "l$num" counter drop
  }
}
NFT
  done
}

heal() {
  local names=("$@") name dropped
  if [ ${#names[@]} = 0 ]; then
    mapfile -t names < <(ns inet nft list tables | awk '$3 ~ /^cut_/ {sub(/^cut_/, "", $3); print $3}')
  fi
  for name in "${names[@]}"; do
    dropped=$(ns inet nft list table inet "cut_$name" 2>/dev/null |
      awk '/counter packets/ {for (i = 1; i <= NF; i++) if ($i == "packets") s += $(i + 1)} END {print s + 0}')
    ns inet nft delete table inet "cut_$name" 2>/dev/null || die "$name is not cut"
    echo "healed $name: the cut dropped $dropped packets"
  done
}

list() {
  local n
  for n in $(our_namespaces); do
    printf '%-12s %s\n' "$n" "$(ip -n "$n" -4 -o addr show | awk '$2 != "lo" {print $4}' | tr '\n' ' ')"
  done
}

case "${1:-}" in
  up) up ;;
  down) [ "$(id -u)" = 0 ] || die "run as root"; down ;;
  exec)
    [ $# -ge 3 ] || die "usage: $0 exec NS CMD..."
    n=$2; shift 2
    case "$n" in "$PREFIX"*) ;; *) n="$PREFIX$n" ;; esac
    exec ip netns exec "$n" "$@" ;;
  list) list ;;
  cut)
    [ "$(id -u)" = 0 ] || die "run as root"
    [ $# -ge 2 ] || die "usage: $0 cut NAME..."
    shift; cut "$@" ;;
  heal) [ "$(id -u)" = 0 ] || die "run as root"; shift; heal "$@" ;;
  *) die "usage: $0 up|down|list|exec NS CMD...|cut NAME...|heal [NAME...]" ;;
esac
