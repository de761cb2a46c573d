// The lab's workload image: the servers of a conformance pod. Listens on every port given, TCP (accept,
// then close, as the lab's pod agent does) and UDP (answers any datagram with the pod's name), until
// SIGTERM. Probes are sent from the pod's network namespace by the lab (lab/podagent.py with no servers),
// so the image holds nothing but this static program.
//
//	workload --tcp 80,81 --udp 80,81
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

func ports(list string) []int {
	var out []int
	for _, p := range strings.Split(list, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			fmt.Fprintf(os.Stderr, "workload: bad port %q\n", p)
			os.Exit(2)
		}
		out = append(out, n)
	}
	return out
}

func main() {
	tcp := flag.String("tcp", "80", "TCP ports, comma separated")
	udp := flag.String("udp", "", "UDP ports, comma separated")
	flag.Parse()
	name := os.Getenv("POD_NAME")
	if name == "" {
		name, _ = os.Hostname()
	}
	for _, p := range ports(*tcp) {
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
		if err != nil {
			fmt.Fprintf(os.Stderr, "workload: listen tcp %d: %v\n", p, err)
			os.Exit(1)
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					continue
				}
				c.Close()
			}
		}()
	}
	for _, p := range ports(*udp) {
		c, err := net.ListenPacket("udp", fmt.Sprintf(":%d", p))
		if err != nil {
			fmt.Fprintf(os.Stderr, "workload: listen udp %d: %v\n", p, err)
			os.Exit(1)
		}
		go func() {
			buf := make([]byte, 2048)
			for {
				_, from, err := c.ReadFrom(buf)
				if err != nil {
					continue
				}
				c.WriteTo([]byte(name), from)
			}
		}()
	}
	fmt.Printf("workload %s: serving tcp [%s] udp [%s]\n", name, *tcp, *udp)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}
