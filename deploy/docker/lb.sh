#!/bin/bash
# sealcast-lb: a load balancer of the compose cluster, with keepalived beside it holding the
# floating address (docs/deployment.md, "Two load balancers, one address").
#
# Starts as root, only for keepalived (VRRP needs raw sockets and adds the address to the
# interface: the container has NET_ADMIN, NET_RAW and NET_BROADCAST); `sealcast lb` itself
# runs as RUN_UID:RUN_GID with no capabilities. Without SEALCAST_VIP it is just `sealcast lb`.
#
#   SEALCAST_VIP           the floating address (IPv4, on the frontend network)
#   SEALCAST_VIP_PREFIX    its prefix length (default 24)
#   SEALCAST_VRRP_SELF     this balancer's own address on that network
#   SEALCAST_VRRP_PEERS    the other balancers' addresses (space-separated)
#   SEALCAST_VRRP_PRIORITY 1-254, higher holds the address when both are healthy
#   SEALCAST_VRRP_ID       the virtual router id, 1-255, the same on every balancer
#
# The address moves when the holder stops advertising (its container died: about 1 s,
# three missed 0.3 s adverts) or when its own balancer stops answering /healthz (two failed checks).
#
# Adverts are believed only from the peers (issue 45): keepalived drops one whose source
# is not in unicast_peer (check_unicast_src) or whose TTL is below 255, i.e. one that
# crossed a router. VRRP authentication is not used: VRRPv3 (needed for adverts under a
# second) has none, and v2's PASS travels in clear. On the frontend network only the
# balancers hold NET_RAW, so no other container can forge a peer's source address.
#
#   sealcast-lb --keepalived-conf   prints the configuration keepalived would get (the
#                                   interface: SEALCAST_VRRP_INTERFACE, default eth0)
set -euo pipefail

run_uid=${RUN_UID:-10001}
run_gid=${RUN_GID:-10001}

# keepalived's configuration for this balancer on interface IFACE, on stdout.
keepalived_conf() { # IFACE
  local iface=$1 self peers peer
  self=${SEALCAST_VRRP_SELF:?SEALCAST_VRRP_SELF: this balancer\'s address}
  peers=${SEALCAST_VRRP_PEERS:?SEALCAST_VRRP_PEERS: the other balancers\' addresses}
  {
    echo "global_defs {"
    echo "  router_id ${SEALCAST_NODE_ID:-lb}"
    echo "  enable_script_security"
    echo "  script_user nobody nogroup"
    echo "  vrrp_garp_master_delay 1"
    echo "  vrrp_garp_master_repeat 3"
    echo "}"
    echo "vrrp_script balancer_alive {"
    echo "  script \"/usr/local/bin/sealcast-healthcheck ${SEALCAST_VRRP_CHECK_PORT:-9102}\""
    echo "  interval 1"
    echo "  timeout 1"
    echo "  fall 2"
    echo "  rise 2"
    echo "}"
    echo "vrrp_instance sealcast {"
    echo "  state BACKUP"
    # The address stays where it is when a balancer with a higher priority comes back:
    # one move per failure, not two.
    echo "  nopreempt"
    echo "  interface $iface"
    echo "  virtual_router_id ${SEALCAST_VRRP_ID:-51}"
    echo "  priority ${SEALCAST_VRRP_PRIORITY:-100}"
    echo "  version 3"
    echo "  advert_int 0.3"
    echo "  unicast_src_ip $self"
    # Adverts from anyone else are dropped, and from a peer only when sent on this link.
    echo "  check_unicast_src"
    echo "  unicast_peer {"
    for peer in $peers; do echo "    $peer min_ttl 255"; done
    echo "  }"
    echo "  virtual_ipaddress {"
    echo "    $SEALCAST_VIP/${SEALCAST_VIP_PREFIX:-24} dev $iface"
    echo "  }"
    echo "  track_script {"
    echo "    balancer_alive"
    echo "  }"
    echo "}"
  }
}

# Arguments are not passed on: the role is configured by its environment.
if [ "${1:-}" = --keepalived-conf ]; then
  keepalived_conf "${SEALCAST_VRRP_INTERFACE:-eth0}"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  exec sealcast lb
fi

if [ -n "${SEALCAST_VIP:-}" ]; then
  self=${SEALCAST_VRRP_SELF:?SEALCAST_VRRP_SELF: this balancer\'s address}
  iface=$(ip -o -4 addr show | awk -v a="$self" 'split($4, p, "/") && p[1] == a { print $2; exit }')
  if [ -z "$iface" ]; then
    echo "sealcast-lb: no interface has $self (SEALCAST_VRRP_SELF)" >&2
    exit 1
  fi
  conf=/run/keepalived/keepalived.conf
  install -d -m 0755 /run/keepalived
  keepalived_conf "$iface" >"$conf"
  # In the background, logging to stderr; it ends with the container (the init reaps it).
  keepalived --dont-fork --log-console --log-detail --use-file "$conf" \
    --pid /run/keepalived/keepalived.pid --vrrp_pid /run/keepalived/vrrp.pid \
    --checkers_pid /run/keepalived/checkers.pid &
fi

exec setpriv --reuid="$run_uid" --regid="$run_gid" --clear-groups \
  --inh-caps=-all --bounding-set=-all sealcast lb
