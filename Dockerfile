# fastfeed in a container: a static binary on a distroless base, run as a non-root user.
#
#   docker build -t fastfeed .
#   docker run --rm --network host fastfeed feed --all --iface eth0 --http 127.0.0.1:8080
#
# Multicast needs the host's network: run with --network host (docker run, or
# network_mode: host in compose). On docker's default bridge network the container sits
# behind a veth pair and NAT: its IGMP joins never reach the host's NIC or the switch,
# so the groups' traffic never arrives (and a publisher's datagrams leave with TTL 1 into
# the bridge only). With --network host, --iface names the host's interface (eth0) or
# its address, --http, --serve-fix and the FIX recovery listen on the host's ports (no
# -p needed), and the kernel's receive buffers are the host's: raise net.core.rmem_max
# on the host (sysctl), a container cannot.
#
# The templates (fixtures/templates.xml) and the demo OMS configuration
# (fixtures/bus.json) are compiled into the binary; mount your own and give
# --templates FILE / --bus-config FILE to use others. Write --stats-out, --dump-books
# and captures to a mounted volume (/data here): the image's filesystem is read-only
# to the non-root user.

# --- build: a static binary (no cgo, no libc), reproducible paths ----------------------
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/fastfeed ./cmd/fastfeed \
 && /out/fastfeed version

# --- run: nothing but the binary and CA certificates, user nonroot (65532) -------------
FROM gcr.io/distroless/static-debian12:nonroot AS run
COPY --from=build /out/fastfeed /usr/local/bin/fastfeed
WORKDIR /data
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/fastfeed"]
CMD ["feed", "--all", "--http", "127.0.0.1:8080", "--log-format", "json", "--stats-out", "/data/feed-stats.json"]
