package costcsv

import (
	"errors"
	"io"
	"strings"
	"testing"
)

const usageHeader = "id,name,infoFields,instanceData,meterId,quantity,subscriptionId,unit,usageEndTime,usageStartTime\n"

func TestUsageReaderLines(t *testing.T) {
	in := usageHeader +
		`a,n,,"{""Microsoft.Resources"":{""resourceUri"":""/subscriptions/S/resourceGroups/RG/providers/Microsoft.Web/sites/x"",""location"":""eastus"",""tags"":{""k"":1}}}",m1,24,S,1 Hour,2026-10-02T00:00:00+00:00,2026-10-01T00:00:00+00:00` + "\n" +
		`b,n,,,m1,not-a-number,S,1 Hour,,2026-10-01T00:00:00Z` + "\n" +
		`c,n,"{""meteredRegion"":""US East"",""project"":""vhd""}",,m1,1E-3,S,GB,,2026-10-01T05:00:00Z` + "\n" +
		`d,n,,{not json,m1,1,S,GB,,2026-10-01T00:00:00Z` + "\n"
	rd, err := NewUsageReader(strings.NewReader(in), &Options{File: "u.csv"})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	if rec.Date != "2026-10-01" || rec.Quantity.String() != "24" || rec.ResourceGroup != "rg" || rec.Tags.Map()["k"] != "1" || rec.RegionID != "eastus" {
		t.Errorf("record %+v", rec)
	}
	_, err = rd.Next()
	var le *LineError
	if !errors.As(err, &le) || le.Line != 3 || le.Column != "quantity" {
		t.Fatalf("bad quantity: %v, want a line error at line 3 column quantity", err)
	}
	rec, err = rd.Next()
	if err != nil || rec.RegionID != "useast" || rec.ResourceName != "vhd" || rec.ChargePeriodStart.Hour() != 5 {
		t.Fatalf("legacy infoFields record %+v, %v", rec, err)
	}
	if _, err = rd.Next(); !errors.As(err, &le) || le.Column != "instanceData" {
		t.Fatalf("bad instanceData: %v", err)
	}
	if _, err = rd.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	var he *HeaderError
	if _, err := NewUsageReader(strings.NewReader("id,quantity\n"), &Options{File: "h.csv"}); !errors.As(err, &he) || !strings.Contains(err.Error(), "usagestarttime") {
		t.Fatalf("header without usageStartTime: %v", err)
	}
}

// FuzzUsageReader: any input gives records, line errors or a header error,
// never a panic, and an accepted record always has a date and an id.
func FuzzUsageReader(f *testing.F) {
	f.Add(usageHeader + `a,n,,,m1,24,S,1 Hour,,2026-10-01T00:00:00Z` + "\n")
	f.Add(usageHeader + `a,n,"{""project"":1}","{""Microsoft.Resources"":{""tags"":{""a"":null}}}",m1,1e5,,,x,2026-10-01` + "\n")
	f.Fuzz(func(t *testing.T, in string) {
		rd, err := NewUsageReader(strings.NewReader(in), nil)
		if err != nil {
			return
		}
		for range 1000 {
			rec, err := rd.Next()
			if err == io.EOF {
				return
			}
			var le *LineError
			if errors.As(err, &le) {
				continue
			}
			if err != nil {
				return
			}
			if rec.Date == "" || len(rec.ID) != 32 {
				t.Fatalf("record without date or id: %+v", rec)
			}
		}
	})
}
