package central

import (
	"strconv"
	"testing"

	"github.com/cargogate/cargogate/gateway/customs"
)

func TestIDs(t *testing.T) {
	if got := ParcelID(12345678); got != "RR123456785CN" {
		t.Errorf("ParcelID = %s, want the §3 example RR123456785CN", got)
	}
	if got := GS1CheckDigit("10614141123456789"); got != 7 { // GS1's own SSCC example
		t.Errorf("GS1CheckDigit = %d, want 7", got)
	}
	// S10 edge cases: c = 10 → 0 and c = 11 → 5 both occur among serials.
	seen := map[int]bool{}
	for n := 0; n < 2000; n++ {
		p := ParcelID(n)
		if len(p) != 13 || !customs.NameRE.MatchString(p) {
			t.Fatalf("ParcelID(%d) = %s", n, p)
		}
		seen[int(p[10]-'0')] = true
		s := SSCC(n)
		if len(s) != 18 || int(s[17]-'0') != GS1CheckDigit(s[:17]) {
			t.Fatalf("SSCC(%d) = %s", n, s)
		}
		a := AWBID(n)
		serial, _ := strconv.Atoi(a[3:10])
		if len(a) != 11 || int(a[10]-'0') != serial%7 {
			t.Fatalf("AWBID(%d) = %s", n, a)
		}
		for _, sub := range []customs.Subject{{Kind: customs.Parcel, ID: p}, {Kind: customs.Bag, ID: s}, {Kind: customs.ULD, ID: ULDID(n)}, {Kind: customs.AWB, ID: a}} {
			if err := sub.Validate(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !seen[0] || !seen[5] {
		t.Errorf("check digits seen %v: want 0 and 5 among them", seen)
	}
	// 10 ≡ weights: serial 00000000 → sum 0 → c = 11 → 5.
	if S10CheckDigit("00000000") != 5 {
		t.Error("S10 c = 11 must give 5")
	}
}
