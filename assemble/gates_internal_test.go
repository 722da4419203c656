package assemble

import (
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/assemble/spec"
)

func TestRunAsRoot(t *testing.T) {
	for user, root := range map[string]bool{
		"": true, "0": true, "00": true, "+0": true, "0:0": true, "000:1001": true, "root": true, "root:root": true,
		"1001": false, "1001:1001": false, "appuser": false, "10": false, "01": false,
	} {
		err := gates{}.runAs([]byte(`{"config":{"User":"` + user + `"}}`))
		if got := err != nil; got != root {
			t.Errorf("User %q: refused %v, want %v (%v)", user, got, root, err)
		}
		if err != nil && !strings.Contains(err.Error(), "would run as root") {
			t.Errorf("User %q: %v", user, err)
		}
		if err := (gates{policy: spec.Policy{AllowRoot: true}}).runAs([]byte(`{"config":{"User":"` + user + `"}}`)); err != nil {
			t.Errorf("User %q with allowRoot: %v", user, err)
		}
	}
}
