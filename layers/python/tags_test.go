package python

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// TestTagsGolden compares Target.Tags with the lists pip's vendored
// packaging.tags gives (testdata/tags/gen.py).
func TestTagsGolden(t *testing.T) {
	for _, tc := range []struct {
		file   string
		target Target
	}{
		{"cp313-glibc2.36-x86_64.txt", Target{OS: "linux", Arch: "amd64", Python: Version{3, 13, 0}, Libc: Libc{Glibc, 2, 36}}},
		{"cp313-glibc2.36-aarch64.txt", Target{OS: "linux", Arch: "arm64", Variant: "v8", Python: Version{3, 13, 0}, Libc: Libc{Glibc, 2, 36}}},
		{"cp312-musl1.2-aarch64.txt", Target{OS: "linux", Arch: "arm64", Python: Version{3, 12, 0}, Libc: Libc{Musl, 1, 2}}},
		{"cp311-glibc2.31-armv7l.txt", Target{OS: "linux", Arch: "arm", Variant: "v7", Python: Version{3, 11, 0}, Libc: Libc{Glibc, 2, 31}}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "tags", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Fields(string(data))
			got, err := tc.target.Tags()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				for i := 0; i < min(len(got), len(want)); i++ {
					if got[i] != want[i] {
						t.Fatalf("tag %d: got %s, pip has %s (%d vs %d tags)", i, got[i], want[i], len(got), len(want))
					}
				}
				t.Fatalf("got %d tags, pip has %d", len(got), len(want))
			}
		})
	}
}

// TestWheelPriority checks which wheels each target takes, best first.
func TestWheelPriority(t *testing.T) {
	amd64 := Target{OS: "linux", Arch: "amd64", Python: Version{3, 13, 0}, Libc: Libc{Glibc, 2, 36}}
	arm64 := Target{OS: "linux", Arch: "arm64", Variant: "v8", Python: Version{3, 13, 0}, Libc: Libc{Glibc, 2, 36}}
	musl := Target{OS: "linux", Arch: "arm64", Python: Version{3, 12, 0}, Libc: Libc{Musl, 1, 2}}
	for _, tc := range []struct {
		name     string
		target   Target
		best     []string // supported, best first
		rejected []string
	}{
		{
			name:   "cp313 glibc 2.36 x86_64",
			target: amd64,
			best: []string{
				"x-1-cp313-cp313-manylinux_2_36_x86_64.whl",
				"x-1-cp313-cp313-manylinux_2_28_x86_64.whl",
				"x-1-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
				"x-1-cp313-cp313-manylinux2010_x86_64.whl",
				"x-1-cp313-cp313-manylinux1_x86_64.whl",
				"x-1-cp313-cp313-linux_x86_64.whl",
				"x-1-cp313-abi3-manylinux_2_17_x86_64.whl",
				"x-1-cp313-none-manylinux_2_17_x86_64.whl",
				"x-1-cp312-abi3-manylinux_2_28_x86_64.whl",
				"x-1-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
				"x-1-cp38-abi3-manylinux1_x86_64.whl",
				"x-1-py313-none-manylinux_2_17_x86_64.whl",
				"x-1-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
				"x-1-py3-none-linux_x86_64.whl",
				"x-1-py30-none-manylinux_2_5_x86_64.whl",
				"x-1-cp313-none-any.whl",
				"x-1-py313-none-any.whl",
				"x-1-py2.py3-none-any.whl",
				"x-1-py312-none-any.whl",
			},
			rejected: []string{
				"x-1-cp313-cp313-manylinux_2_39_x86_64.whl", // too new a glibc
				"x-1-cp313-cp313-musllinux_1_2_x86_64.whl",
				"x-1-cp313-cp313-manylinux_2_17_aarch64.whl",
				"x-1-cp312-cp312-manylinux_2_17_x86_64.whl", // another CPython's ABI
				"x-1-cp314-abi3-manylinux_2_17_x86_64.whl",  // abi3 from a newer Python
				"x-1-cp313-cp313t-manylinux_2_17_x86_64.whl",
				"x-1-cp313-cp313-win_amd64.whl",
				"x-1-pp310-pypy310_pp73-manylinux_2_17_x86_64.whl",
				"x-1-py2-none-any.whl",
				"x-1-py314-none-any.whl",
				"x-1-cp313-cp313-manylinux_2_4_x86_64.whl",
			},
		},
		{
			name:   "cp313 glibc 2.36 aarch64",
			target: arm64,
			best: []string{
				"x-1-cp313-cp313-manylinux_2_28_aarch64.whl",
				"x-1-cp313-cp313-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
				"x-1-cp313-cp313-linux_aarch64.whl",
				"x-1-cp311-abi3-manylinux2014_aarch64.whl",
				"x-1-py3-none-manylinux_2_17_aarch64.whl",
				"x-1-py3-none-any.whl",
			},
			rejected: []string{
				"x-1-cp313-cp313-manylinux_2_39_aarch64.whl",
				"x-1-cp313-cp313-manylinux_2_16_aarch64.whl", // aarch64 starts at 2.17
				"x-1-cp313-cp313-manylinux1_aarch64.whl",
				"x-1-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
				"x-1-cp313-cp313-musllinux_1_1_aarch64.whl",
			},
		},
		{
			name:   "cp312 musl 1.2 aarch64",
			target: musl,
			best: []string{
				"x-1-cp312-cp312-musllinux_1_2_aarch64.whl",
				"x-1-cp312-cp312-musllinux_1_1_aarch64.whl",
				"x-1-cp312-cp312-linux_aarch64.whl",
				"x-1-cp312-abi3-musllinux_1_2_aarch64.whl",
				"x-1-cp39-abi3-musllinux_1_1_aarch64.whl",
				"x-1-py3-none-musllinux_1_2_aarch64.whl",
				"x-1-cp312-none-any.whl",
				"x-1-py3-none-any.whl",
			},
			rejected: []string{
				"x-1-cp312-cp312-musllinux_1_3_aarch64.whl",
				"x-1-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
				"x-1-cp313-abi3-musllinux_1_2_aarch64.whl",
				"x-1-cp312-cp312-musllinux_1_2_x86_64.whl",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tags, err := tc.target.Tags()
			if err != nil {
				t.Fatal(err)
			}
			ranks := tagRanks(tags)
			rankOf := func(fn string) int {
				w, err := parseWheelName(fn)
				if err != nil {
					t.Fatal(err)
				}
				r, _ := w.rank(ranks)
				return r
			}
			for _, fn := range tc.rejected {
				if r := rankOf(fn); r >= 0 {
					t.Errorf("%s is supported (rank %d), want rejected", fn, r)
				}
			}
			got := append([]string(nil), tc.best...)
			sort.SliceStable(got, func(i, j int) bool { return rankOf(got[i]) < rankOf(got[j]) })
			for i, fn := range got {
				if rankOf(fn) < 0 {
					t.Errorf("%s is rejected, want supported", fn)
				}
				if fn != tc.best[i] {
					t.Errorf("position %d: %s, want %s", i, fn, tc.best[i])
				}
			}
		})
	}
}

func TestParseWheelName(t *testing.T) {
	w, err := parseWheelName("Foo_Bar-1.0.post1-2abc-py2.py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
	if err != nil {
		t.Fatal(err)
	}
	want := wheelName{Dist: "Foo_Bar", Version: "1.0.post1", Build: 2, BuildSuffix: "abc",
		Tag:  "py2.py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64",
		Tags: []string{"py2-none-manylinux_2_17_x86_64", "py2-none-manylinux2014_x86_64", "py3-none-manylinux_2_17_x86_64", "py3-none-manylinux2014_x86_64"}}
	if !reflect.DeepEqual(w, want) {
		t.Errorf("got %+v\nwant %+v", w, want)
	}
	for _, bad := range []string{"foo-1.0.tar.gz", "foo-1.0-py3-none.whl", "foo-1.0-x-py3-none-any.whl", "foo-1.0-py3..-none-any.whl", "foo-not@version-py3-none-any.whl"} {
		if _, err := parseWheelName(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestMachine(t *testing.T) {
	for _, tc := range []struct{ arch, variant, want string }{
		{"amd64", "", "x86_64"}, {"arm64", "v8", "aarch64"}, {"arm", "v7", "armv7l"}, {"arm", "", "armv7l"},
		{"arm", "v6", "armv6l"}, {"386", "", "i686"}, {"ppc64le", "", "ppc64le"}, {"s390x", "", "s390x"}, {"riscv64", "", "riscv64"},
	} {
		got, err := Target{OS: "linux", Arch: tc.arch, Variant: tc.variant}.Machine()
		if err != nil || got != tc.want {
			t.Errorf("%s/%s: %q, %v; want %q", tc.arch, tc.variant, got, err, tc.want)
		}
	}
	if _, err := (Target{OS: "linux", Arch: "mips64le"}).Machine(); err == nil {
		t.Error("mips64le: no error")
	}
	// armv6 has no manylinux, only linux_armv6l
	plats, err := Target{OS: "linux", Arch: "arm", Variant: "v6", Python: Version{3, 12, 0}, Libc: Libc{Glibc, 2, 36}}.PlatformTags()
	if err != nil || !reflect.DeepEqual(plats, []string{"linux_armv6l"}) {
		t.Errorf("armv6 platforms: %v, %v", plats, err)
	}
}

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{"Foo_Bar": "foo-bar", "foo.bar": "foo-bar", "foo--__bar": "foo-bar", "FOO": "foo", "a-b_c.d": "a-b-c-d"} {
		if got := normalizeName(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
