// Command harness is the timing and reporting half of bench/run.sh.
//
//	harness port                                  print a free TCP port on 127.0.0.1
//	harness time -out F -tag "W TOOL SCEN I" -log L -- CMD ARGS... [:: CMD ARGS...]
//	harness report -results F -meta F -md OUT     print the tables, write Markdown
//
// "time" runs the commands one after the other (a tool's whole sequence, e.g.
// tar then crane append) and appends one line to F: the wall time of the
// sequence, its user and system CPU time, the largest peak RSS of any of its
// processes (wait4's rusage, children included) and each step's wall time.
// Wall time is taken with the monotonic clock, so it has microsecond
// resolution rather than GNU time's 10 ms.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: harness port|time|report ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "port":
		err = freePort()
	case "time":
		err = timeCmd(os.Args[2:])
	case "report":
		err = report(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

func freePort() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	return nil
}

func timeCmd(args []string) error {
	fs := flag.NewFlagSet("time", flag.ExitOnError)
	out := fs.String("out", "", "results file to append to")
	tag := fs.String("tag", "", "workload tool scenario iteration")
	logf := fs.String("log", "", "file for the commands' output (default: discard)")
	fs.Parse(args)
	rest := fs.Args()
	if *out == "" || len(strings.Fields(*tag)) != 4 || len(rest) == 0 {
		return fmt.Errorf("time: need -out, -tag with 4 fields, and a command")
	}
	var steps [][]string
	cur := []string{}
	for _, a := range rest {
		if a == "::" {
			steps = append(steps, cur)
			cur = []string{}
			continue
		}
		cur = append(cur, a)
	}
	steps = append(steps, cur)

	var logw *os.File
	if *logf != "" {
		f, err := os.OpenFile(*logf, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		logw = f
		fmt.Fprintf(f, "\n### %s\n", *tag)
	}
	var total, user, sys time.Duration
	var maxRSS int64
	var stepTimes []string
	for _, s := range steps {
		if len(s) == 0 {
			return fmt.Errorf("time: empty step")
		}
		cmd := exec.Command(s[0], s[1:]...)
		cmd.Stdout, cmd.Stderr = logw, logw
		if logw != nil {
			fmt.Fprintf(logw, "$ %s\n", strings.Join(s, " "))
		}
		start := time.Now()
		err := cmd.Run()
		took := time.Since(start)
		if err != nil {
			return fmt.Errorf("%s: %q failed: %v (see %s)", *tag, strings.Join(s, " "), err, *logf)
		}
		total += took
		stepTimes = append(stepTimes, fmt.Sprintf("%.4f", took.Seconds()))
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			maxRSS = max(maxRSS, ru.Maxrss)
			user += time.Duration(ru.Utime.Nano())
			sys += time.Duration(ru.Stime.Nano())
		}
	}
	f, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "%s\t%.4f\t%.3f\t%.3f\t%d\t%s\n", strings.Join(strings.Fields(*tag), "\t"),
		total.Seconds(), user.Seconds(), sys.Seconds(), maxRSS, strings.Join(stepTimes, ","))
	fmt.Fprintf(os.Stderr, "  %-40s %8.3f s  cpu %6.2f s  rss %4d MB\n", *tag, total.Seconds(), (user + sys).Seconds(), maxRSS/1024)
	return w.Flush()
}
