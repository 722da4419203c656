// Command harness is the timing and reporting half of bench/run.sh.
//
//	harness port                                  print a free TCP port on 127.0.0.1
//	harness time -out F -tag "W TOOL SCEN I" -log L -- CMD ARGS... [:: CMD ARGS...]
//	harness report -results F -meta F -md OUT     print the tables, write Markdown
//	harness htpasswd USER PASSWORD                print a bcrypt htpasswd line for a registry
//
// "time" runs the commands one after the other (a tool's whole sequence, e.g.
// tar then crane append) and appends one line to F: the wall time of the
// sequence, its user and system CPU time, the largest peak RSS of any of its
// processes (wait4's rusage, children included) and each step's wall time.
// Wall time is taken with the monotonic clock, so it has microsecond
// resolution rather than GNU time's 10 ms. It also records how many cores
// other processes kept busy meanwhile (from /proc/stat), to show the noise.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"
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
	case "htpasswd":
		err = htpasswd(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

func htpasswd(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("htpasswd: need USER PASSWORD")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(args[1]), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	fmt.Printf("%s:%s\n", args[0], h)
	return nil
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
	regPID := fs.Int("registry-pid", 0, "the registry's pid: its CPU time is recorded apart and not counted as others' load")
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
	busy0, all0 := cpuJiffies()
	reg0 := procCPU(*regPID)
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
	// Cores kept busy by everything else on the machine meanwhile: all busy
	// time (steal included) less this sequence's own CPU time.
	busy1, all1 := cpuJiffies()
	reg := -1.0
	if *regPID > 0 {
		reg = (procCPU(*regPID) - reg0).Seconds()
	}
	others := -1.0
	if all1 > all0 && total > 0 {
		machine := float64(busy1-busy0) / float64(all1-all0) * float64(runtime.NumCPU())
		others = max(0, machine-((user+sys).Seconds()+max(reg, 0))/total.Seconds())
	}
	f, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "%s\t%.4f\t%.3f\t%.3f\t%d\t%s\t%.2f\t%.2f\n", strings.Join(strings.Fields(*tag), "\t"),
		total.Seconds(), user.Seconds(), sys.Seconds(), maxRSS, strings.Join(stepTimes, ","), others, reg)
	fmt.Fprintf(os.Stderr, "  %-40s %8.3f s  cpu %6.2f s  rss %4d MB  registry cpu %5.2f s  others %.1f cores\n", *tag, total.Seconds(), (user + sys).Seconds(), maxRSS/1024, reg, others)
	return w.Flush()
}

// procCPU is the user+system CPU time of process pid so far (0 if unknown).
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// cpuJiffies reads the machine's busy and total CPU time from /proc/stat.
func cpuJiffies() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		n, _ := strconv.ParseUint(v, 10, 64)
		total += n
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return busy, total
}
