package testenv

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// PubackHold is a TCP proxy in front of an MQTT broker that understands
// MQTT framing in the broker-to-client direction: while Hold is on it keeps
// back the broker's PUBACK packets (the acknowledgements of the client's
// QoS 1 publishes) and passes everything else through; Release sends the
// held ones on. It stands for a broker slow to make a publish durable (a
// JetStream cluster after a node's death) without slowing what it
// delivers.
type PubackHold struct {
	t        testing.TB
	ln       net.Listener
	upstream string

	mu    sync.Mutex
	hold  bool
	held  int
	conns map[*holdConn]bool
	wg    sync.WaitGroup
}

type holdConn struct {
	client, broker net.Conn
	wmu            sync.Mutex // writes to client
	pending        [][]byte   // held PUBACKs, under PubackHold.mu
}

// NewPubackHold starts the proxy on a free 127.0.0.1 port forwarding to
// upstream (host:port); it is stopped at test cleanup.
func NewPubackHold(t testing.TB, upstream string) *PubackHold {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("puback hold: %v", err)
	}
	p := &PubackHold{t: t, ln: ln, upstream: upstream, conns: map[*holdConn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// URL is the proxy's address as an MQTT broker URL.
func (p *PubackHold) URL() string { return "tcp://" + p.ln.Addr().String() }

// Hold starts keeping back the broker's PUBACKs.
func (p *PubackHold) Hold() {
	p.mu.Lock()
	p.hold = true
	p.mu.Unlock()
}

// Held is how many PUBACKs have been kept back since the proxy started.
func (p *PubackHold) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

// Release stops holding and sends the held PUBACKs on, in order.
func (p *PubackHold) Release() {
	p.mu.Lock()
	p.hold = false
	var flush []*holdConn
	for c := range p.conns {
		flush = append(flush, c)
	}
	p.mu.Unlock()
	for _, c := range flush {
		c.wmu.Lock()
		p.mu.Lock()
		pending := c.pending
		c.pending = nil
		p.mu.Unlock()
		for _, pk := range pending {
			if _, err := c.client.Write(pk); err != nil {
				break
			}
		}
		c.wmu.Unlock()
	}
}

func (p *PubackHold) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.client.Close()
		c.broker.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *PubackHold) accept() {
	defer p.wg.Done()
	for {
		cl, err := p.ln.Accept()
		if err != nil {
			return
		}
		br, err := net.Dial("tcp", p.upstream)
		if err != nil {
			cl.Close()
			continue
		}
		c := &holdConn{client: cl, broker: br}
		p.mu.Lock()
		p.conns[c] = true
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { // client to broker: as it is
			defer p.wg.Done()
			io.Copy(br, cl)
			br.Close()
		}()
		go func() {
			defer p.wg.Done()
			p.down(c)
			cl.Close()
			p.mu.Lock()
			delete(p.conns, c)
			p.mu.Unlock()
		}()
	}
}

// down copies the broker's packets to the client one by one, holding
// PUBACKs while Hold is on.
func (p *PubackHold) down(c *holdConn) {
	r := bufio.NewReader(c.broker)
	for {
		pk, err := readPacket(r)
		if err != nil {
			return
		}
		const puback = 4
		if pk[0]>>4 == puback {
			p.mu.Lock()
			if p.hold {
				c.pending = append(c.pending, pk)
				p.held++
				p.mu.Unlock()
				continue
			}
			p.mu.Unlock()
		}
		c.wmu.Lock()
		_, err = c.client.Write(pk)
		c.wmu.Unlock()
		if err != nil {
			return
		}
	}
}

// readPacket reads one MQTT control packet: the fixed header (type and
// flags, remaining length in 1-4 bytes) and the rest.
func readPacket(r *bufio.Reader) ([]byte, error) {
	hdr := make([]byte, 1, 5)
	b, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	hdr[0] = b
	n, mul := 0, 1
	for i := 0; ; i++ {
		if i == 4 {
			return nil, errors.New("mqtt: remaining length over 4 bytes")
		}
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		hdr = append(hdr, b)
		n += int(b&0x7f) * mul
		mul *= 128
		if b&0x80 == 0 {
			break
		}
	}
	pk := make([]byte, len(hdr)+n)
	copy(pk, hdr)
	if _, err := io.ReadFull(r, pk[len(hdr):]); err != nil {
		return nil, err
	}
	return pk, nil
}
