package tenancy_test

import (
	"testing"

	"github.com/tenancy/tenancy"
)

// The identifier is derived on every GET /org/get: keep it cheap.
func BenchmarkIdentifier(b *testing.B) {
	for _, name := range []string{"Tech Innovations Corp 2.0", "Société Générale 東京テック"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tenancy.Identifier(name); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
