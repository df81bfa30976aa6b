package costcsv

// occurrences counts the lines seen per natural key, to number lines that
// are identical in every identifying column. It is the only state of a
// Reader that grows with the file, so it is built for size: a key is 64 bits
// of its SHA-256 (never the line), a count one byte (rarer counts above 254
// spill to a map), in open-addressing shards that grow one at a time, so
// growing never copies the whole table at once. That is 12 to 24 bytes per
// distinct key: about 16 MiB for a 1 GB file of a million lines.
//
// Two different keys share a counter only if their 64-bit fingerprints are
// equal: for a million distinct keys the chance is about 3 in 100 million.
// Even then ids stay distinct (they hash the whole key) and deterministic
// for a given file; only reordering such a file could renumber those lines.
type occurrences struct {
	shards [occShards]occShard
}

const (
	occShardBits = 6
	occShards    = 1 << occShardBits
	occMinSlots  = 64
	occSpilled   = 255 // count byte meaning "see the spill map"
)

type occShard struct {
	fps    []uint64 // 0 = empty slot
	counts []uint8
	n      int
	spill  map[uint64]uint32
}

// next counts one more line with fingerprint fp and returns its occurrence
// number, from 1.
func (o *occurrences) next(fp uint64) uint32 {
	if fp == 0 {
		fp = 1 // 0 marks an empty slot
	}
	s := &o.shards[fp>>(64-occShardBits)]
	if 4*(s.n+1) > 3*len(s.fps) {
		s.grow()
	}
	mask := uint64(len(s.fps) - 1)
	for i := fp & mask; ; i = (i + 1) & mask {
		switch s.fps[i] {
		case 0:
			s.fps[i], s.counts[i] = fp, 1
			s.n++
			return 1
		case fp:
			switch c := s.counts[i]; {
			case c < occSpilled-1:
				s.counts[i] = c + 1
				return uint32(c) + 1
			case c == occSpilled-1:
				if s.spill == nil {
					s.spill = map[uint64]uint32{}
				}
				s.counts[i] = occSpilled
				s.spill[fp] = occSpilled
				return occSpilled
			default:
				s.spill[fp]++
				return s.spill[fp]
			}
		}
	}
}

func (s *occShard) grow() {
	n := max(occMinSlots, 2*len(s.fps))
	fps, counts := make([]uint64, n), make([]uint8, n)
	mask := uint64(n - 1)
	for j, fp := range s.fps {
		if fp == 0 {
			continue
		}
		i := fp & mask
		for fps[i] != 0 {
			i = (i + 1) & mask
		}
		fps[i], counts[i] = fp, s.counts[j]
	}
	s.fps, s.counts = fps, counts
}
