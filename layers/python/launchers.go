package python

import (
	"bytes"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

var entryPointRE = regexp.MustCompile(`^([\p{L}\p{N}_.]+)\s*:\s*([\p{L}\p{N}_.]+)\s*(\[.*\])?\s*$`)

// shebang is the #! line pypa/installer writes for a launcher: a plain one
// when the interpreter has no spaces and fits in 127 bytes, else a /bin/sh
// line that execs it.
func shebang(interpreter string) string {
	if !strings.Contains(interpreter, " ") && len(interpreter)+3 <= 127 {
		return "#!" + interpreter + "\n"
	}
	quoted := "'" + strings.ReplaceAll(interpreter, "'", `'"'"'`) + "'"
	return "#!/bin/sh\n'''exec' " + quoted + " \"$0\" \"$@\"\n' '''\n"
}

// launcherScript is pypa/installer's script template.
const launcherScript = `# -*- coding: utf-8 -*-
import re
import sys
from %s import %s
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\.pyw|\.exe)?$", "", sys.argv[0])
    sys.exit(%s())
`

// launchers makes the scripts of entry_points.txt's [console_scripts] and
// [gui_scripts].
func launchers(fn string, text []byte, t Target) ([]placed, error) {
	var out []placed
	section := ""
	seen := map[string]bool{}
	for i, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if isIniComment(line) {
			continue
		}
		if name, ok := iniSection(line); ok {
			section = name
			continue
		}
		if section != "console_scripts" && section != "gui_scripts" {
			continue
		}
		where := fmt.Sprintf("%s: entry_points.txt line %d", fn, i+1)
		name, value, err := scriptEntry(where, line, seen)
		if err != nil {
			return nil, err
		}
		body, err := launcherBody(where, value, t.Interpreter)
		if err != nil {
			return nil, err
		}
		out = append(out, inline(path.Join(t.ScriptsDir, name), t.ScriptsDir, fn+": "+section+" "+name, []byte(body), true))
	}
	return out, nil
}

// isIniComment reports whether a trimmed entry_points.txt line is blank or
// a comment.
func isIniComment(line string) bool {
	return line == "" || line[0] == '#' || line[0] == ';'
}

// iniSection returns the name of a "[section]" line.
func iniSection(line string) (string, bool) {
	if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
		return strings.TrimSpace(line[1 : len(line)-1]), true
	}
	return "", false
}

// scriptEntry splits a "NAME = VALUE" line, checking that NAME is a file
// name not defined before (seen records it).
func scriptEntry(where, line string, seen map[string]bool) (string, string, error) {
	name, value, ok := strings.Cut(line, "=")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	if !ok || name == "" {
		return "", "", fmt.Errorf("%s: %q is not NAME = MODULE:FUNCTION", where, line)
	}
	if name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return "", "", fmt.Errorf("%s: script name %q is not a file name", where, name)
	}
	if seen[name] {
		return "", "", fmt.Errorf("%s: script %s is defined twice", where, name)
	}
	seen[name] = true
	return name, value, nil
}

// launcherBody is the launcher script that runs the MODULE:FUNCTION value.
func launcherBody(where, value, interpreter string) (string, error) {
	m := entryPointRE.FindStringSubmatch(value)
	if m == nil {
		return "", fmt.Errorf("%s: %q is not MODULE:FUNCTION", where, value)
	}
	module, attr := m[1], m[2]
	importName, _, _ := strings.Cut(attr, ".")
	return shebang(interpreter) + fmt.Sprintf(launcherScript, module, importName, attr), nil
}

// recordFile is the RECORD at recordPath listing every file in out (and
// itself), relative to the site directory.
func recordFile(fn, recordPath, siteDir string, out []placed) (placed, error) {
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	rows := make([][]string, 0, len(out)+1)
	for _, p := range out {
		sum, _ := hex.DecodeString(p.sum)
		rows = append(rows, []string{relPath(siteDir, p.abs), recordHash(sum), strconv.FormatInt(p.size, 10)})
	}
	rows = append(rows, []string{relPath(siteDir, recordPath), "", ""})
	sort.Slice(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
	if err := cw.WriteAll(rows); err != nil {
		return placed{}, fmt.Errorf("%s: writing RECORD: %w", fn, err)
	}
	return inline(recordPath, siteDir, fn+": RECORD", buf.Bytes(), false), nil
}
