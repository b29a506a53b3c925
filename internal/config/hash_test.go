package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
)

// TestSetHashEncoding: the set hash is the SHA-256 of the JSON array of [name, hash] pairs
// in name order, as nodes of earlier releases compute it, whatever the names hold.
func TestSetHashEncoding(t *testing.T) {
	for _, jobs := range [][]*Job{
		nil,
		{{Name: "b", Hash: "2"}, {Name: "a", Hash: "1"}},
		{{Name: "db-backup", Hash: "ab12"}, {Name: "x.y_z", Hash: ""}},
		{{Name: `q"<&>\`, Hash: "h"}, {Name: "ü\u2028\x7f\x01", Hash: "\xff"}},
	} {
		pairs := [][2]string{}
		for _, j := range jobs {
			pairs = append(pairs, [2]string{j.Name, j.Hash})
		}
		if len(pairs) == 2 && pairs[0][0] > pairs[1][0] {
			pairs[0], pairs[1] = pairs[1], pairs[0]
		}
		b, err := json.Marshal(pairs)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if got, want := SetHash(jobs), hex.EncodeToString(sum[:]); got != want {
			t.Errorf("SetHash of %s = %s, want %s", b, got, want)
		}
	}
}
