#!/usr/bin/env python3
"""A lossy link between two interfaces: forwards every frame from one to the other, dropping,
duplicating and reordering some at random. Used by test/tftp/loss.test.ts because this kernel has
no sch_netem (`tc qdisc add ... netem` fails with "qdisc kind is unknown") and no netfilter.

usage: lossy-bridge.py IF_A IF_B LOSS DUP REORDER SEED   (probabilities 0..1, per frame, each way)
A reordered frame is held back and sent after the next frame in the same direction (or after 5 ms)."""
import random
import select
import socket
import sys

ifa, ifb = sys.argv[1], sys.argv[2]
loss, dup, reorder = float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
random.seed(int(sys.argv[6]))


def open_if(name):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))  # ETH_P_ALL
    s.bind((name, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return s


sa, sb = open_if(ifa), open_if(ifb)
peer = {sa: sb, sb: sa}
held = {sa: None, sb: None}
counts = {"fwd": 0, "drop": 0, "dup": 0, "reorder": 0}
print("ready", flush=True)
while True:
    ready, _, _ = select.select([sa, sb], [], [], 0.005)
    if not ready:
        for s in (sa, sb):
            if held[s] is not None:
                try:
                    peer[s].send(held[s])
                except OSError:
                    pass
                held[s] = None
        continue
    for s in ready:
        try:
            data, addr = s.recvfrom(65535)
        except OSError:  # ENETDOWN while a link flaps (offload changes): keep bridging
            continue
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        out = peer[s]
        x = random.random()
        if x < loss:
            counts["drop"] += 1
            continue
        if held[s] is None and x < loss + reorder:
            held[s] = data
            counts["reorder"] += 1
            continue
        try:
            out.send(data)
            counts["fwd"] += 1
            if random.random() < dup:
                out.send(data)
                counts["dup"] += 1
            if held[s] is not None:
                out.send(held[s])
                held[s] = None
        except OSError:
            pass
