package natlab

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A delay line stands in for tc netem where the kernel has none
// (CONFIG_NET_SCH_NETEM unset, as on the CI machine): a link of the lab's
// internet no longer joins the bridge (or, for a routed link, the
// internet namespace's routing) itself; a veth pair takes its place
// there, and the lab's own process copies Ethernet frames between the
// link and the pair with AF_PACKET sockets, holding the frames that go
// towards the attached namespace for the delay. Frames, not packets: ARP,
// MAC learning and every protocol pass as on a wire. The sockets use
// PACKET_VNET_HDR, so segmentation-offloaded frames (64 KiB TCP
// segments on veth) are carried with their offload header and the kernel
// segments them on the other side.

// vnetHdrLen is the size of struct virtio_net_hdr.
const vnetHdrLen = 10

// maxFrame bounds one read: a GSO frame (64 KiB) and its header.
const maxFrame = 65536 + 14 + vnetHdrLen + 64

// lineQueue bounds the frames one direction of a line holds; more are
// dropped, like a full queue on a real link.
const lineQueue = 8192

// delayLine copies frames between inner (the link to the attached
// namespace) and outer (the veth towards the bridge), delaying those from
// outer to inner.
type delayLine struct {
	inner, outer int // AF_PACKET sockets
	delay        *atomic.Int64
	wg           sync.WaitGroup
	closed       atomic.Bool
}

// packetSocket opens an AF_PACKET socket on interface ifc of the calling
// goroutine's namespace, with virtio-net headers.
func packetSocket(ifc string) (int, error) {
	ni, err := net.InterfaceByName(ifc)
	if err != nil {
		return -1, err
	}
	proto := int(htons(unix.ETH_P_ALL))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return -1, fmt.Errorf("packet socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("PACKET_VNET_HDR: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ni.Index}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind packet socket to %s: %w", ifc, err)
	}
	// Short reads so that Close is noticed.
	tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// startDelayLine runs a line between the interfaces inner and outer of
// the calling goroutine's namespace (call it inside NS.Do).
func startDelayLine(inner, outer string, delay *atomic.Int64) (*delayLine, error) {
	in, err := packetSocket(inner)
	if err != nil {
		return nil, err
	}
	out, err := packetSocket(outer)
	if err != nil {
		unix.Close(in)
		return nil, err
	}
	l := &delayLine{inner: in, outer: out, delay: delay}
	l.wg.Add(2)
	go l.copy(in, out, nil)
	go l.copy(out, in, delay)
	return l, nil
}

// frame is one frame in flight and when it is due.
type frame struct {
	b   []byte
	due time.Time
}

// copy reads frames from src and writes them to dst, each delay after
// it arrived (nil: at once). A writer goroutine keeps the order.
func (l *delayLine) copy(src, dst int, delay *atomic.Int64) {
	defer l.wg.Done()
	q := make(chan frame, lineQueue)
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		for f := range q {
			if d := time.Until(f.due); d > 0 {
				time.Sleep(d)
			}
			_, _ = unix.Write(dst, f.b)
		}
	}()
	defer writer.Wait()
	defer close(q)
	buf := make([]byte, maxFrame)
	for !l.closed.Load() {
		n, from, err := unix.Recvfrom(src, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue // our own writes, and what the namespace sends out
		}
		f := frame{b: append([]byte(nil), buf[:n]...)}
		if delay != nil {
			f.due = time.Now().Add(time.Duration(delay.Load()))
		}
		select {
		case q <- f:
		default: // queue full: dropped
		}
	}
}

// close stops the line.
func (l *delayLine) close() {
	l.closed.Store(true)
	l.wg.Wait()
	unix.Close(l.inner)
	unix.Close(l.outer)
}

// noNetem reports whether err is tc's answer on a kernel without netem.
func noNetem(out string) bool {
	return strings.Contains(out, "Specified qdisc kind is unknown") || strings.Contains(out, "Unknown qdisc")
}
