package spec

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/gantry-dev/gantry/layers"
)

// ParseOwner parses "uid:gid" (numeric).
func ParseOwner(s string) (layers.Owner, error) {
	u, g, ok := strings.Cut(s, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if !ok || err1 != nil || err2 != nil || uid < 0 || gid < 0 || uid > 1<<31-2 || gid > 1<<31-2 {
		return layers.Owner{}, fmt.Errorf("owner %q: want numeric uid:gid such as 1001:1001", s)
	}
	return layers.Owner{UID: uid, GID: gid}, nil
}

// ParsePort parses N or N/proto into "N/proto" (tcp by default).
func ParsePort(s string) (string, error) {
	num, proto, ok := strings.Cut(s, "/")
	if !ok {
		proto = "tcp"
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("port %q: want a number 1-65535, optionally /tcp, /udp or /sctp", s)
	}
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return "", fmt.Errorf("port %q: protocol must be tcp, udp or sctp", s)
	}
	return fmt.Sprintf("%d/%s", n, proto), nil
}

// ParseSize parses sizes such as 200MB (decimal, as docker images shows
// them) or 1.5GiB (binary).
func ParseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	t := strings.TrimSpace(s)
	for _, u := range units {
		if num, ok := strings.CutSuffix(t, u.suffix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
			n := f * u.mult
			// !(n < 2^63) also rejects NaN and +Inf; under a byte would be 0 (no limit).
			if err != nil || n < 1 || !(n < 1<<63) {
				break
			}
			return int64(n), nil
		}
	}
	return 0, fmt.Errorf("size %q: want a number with a unit, such as 200MB or 1.5GiB", s)
}

// ValidateTag checks a tag as registries accept it.
func ValidateTag(t string) error {
	if !tagRE.MatchString(t) {
		return fmt.Errorf("%q is not a valid tag (letters, digits, _ . -, at most 128)", t)
	}
	return nil
}

// ValidateUser checks a user's names, ids, home and shell.
func ValidateUser(u layers.User) error {
	_, err := validateUser(u)
	return err
}

// validateUser is ValidateUser that also names the field at fault
// (".name", ".home", ...).
func validateUser(u layers.User) (string, error) {
	if !posixNameRE.MatchString(u.Name) {
		return ".name", fmt.Errorf("user name %q is not a valid POSIX name (lowercase, digits, _ -, at most 32)", u.Name)
	}
	if !posixNameRE.MatchString(u.Group) {
		return ".group", fmt.Errorf("group name %q is not a valid POSIX name", u.Group)
	}
	if u.UID < 0 || u.UID > 65534 {
		return ".uid", fmt.Errorf("id %d out of range 0-65534", u.UID)
	}
	if u.GID < 0 || u.GID > 65534 {
		return ".gid", fmt.Errorf("id %d out of range 0-65534", u.GID)
	}
	// Home and shell are written into a line of /etc/passwd: a newline
	// there would add an account, a colon would shift the fields.
	for _, f := range []struct{ field, val, example string }{{"home", u.Home, "/home/app"}, {"shell", u.Shell, "/bin/sh"}} {
		if f.val != "" && !passwdField(f.val) {
			return "." + f.field, fmt.Errorf("%s %q must be an absolute path without \":\" or control characters (it is a field of /etc/passwd), such as %s", f.field, f.val, f.example)
		}
	}
	return "", nil
}

// passwdField reports whether s can be the home or shell of an /etc/passwd
// line: an absolute path with no field separator and no control character
// (a newline above all).
func passwdField(s string) bool {
	if !strings.HasPrefix(s, "/") || strings.Contains(s, ":") {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
