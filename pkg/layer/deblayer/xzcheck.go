package deblayer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// maxXZDict bounds the LZMA2 dictionary an xz member may ask for. The
// decoder allocates the dictionary the stream names up front, so a 60-byte
// stream can demand 4 GiB; dpkg-deb's strongest setting (-z9 -Sextreme)
// uses 64 MiB.
const maxXZDict = 256 << 20

// checkXZ walks the xz streams of r (size bytes) from their indexes and
// fails if a block's LZMA2 dictionary is larger than maxXZDict, or if the
// structure is not that of xz streams.
func checkXZ(r io.ReaderAt, size int64) error {
	end := size
	read := func(off, n int64) ([]byte, error) {
		if off < 0 || n < 0 || off+n > size || n > size {
			return nil, errors.New("xz: truncated or corrupt stream")
		}
		b := make([]byte, n)
		if _, err := r.ReadAt(b, off); err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		return b, nil
	}
	for end > 0 {
		// Stream padding: zeros in groups of four.
		for end >= 4 {
			b, err := read(end-4, 4)
			if err != nil {
				return err
			}
			if binary.LittleEndian.Uint32(b) != 0 {
				break
			}
			end -= 4
		}
		if end == 0 {
			break
		}
		footer, err := read(end-12, 12)
		if err != nil {
			return err
		}
		if string(footer[10:12]) != "YZ" {
			return errors.New("xz: no stream footer (truncated?)")
		}
		indexSize := (int64(binary.LittleEndian.Uint32(footer[4:8])) + 1) * 4
		indexPos := end - 12 - indexSize
		index, err := read(indexPos, indexSize)
		if err != nil {
			return err
		}
		if index[0] != 0 {
			return errors.New("xz: corrupt index")
		}
		p := 1
		count, err := uvarint(index, &p)
		if err != nil {
			return err
		}
		var unpadded []int64
		var blocks int64
		for i := uint64(0); i < count; i++ {
			u, err := uvarint(index, &p)
			if err != nil {
				return err
			}
			if _, err := uvarint(index, &p); err != nil {
				return err
			}
			if u == 0 || u > uint64(size) {
				return errors.New("xz: corrupt index")
			}
			unpadded = append(unpadded, int64(u))
			blocks += (int64(u) + 3) &^ 3
			if blocks > size {
				return errors.New("xz: corrupt index")
			}
		}
		start := indexPos - blocks - 12
		hdr, err := read(start, 12)
		if err != nil {
			return err
		}
		if string(hdr[:6]) != "\xfd7zXZ\x00" {
			return errors.New("xz: no stream header where the index says")
		}
		off := start + 12
		for _, u := range unpadded {
			if err := checkXZBlockHeader(read, off); err != nil {
				return err
			}
			off += (u + 3) &^ 3
		}
		end = start
	}
	return nil
}

// checkXZBlockHeader checks the filters of the block header at off.
func checkXZBlockHeader(read func(off, n int64) ([]byte, error), off int64) error {
	b, err := read(off, 1)
	if err != nil {
		return err
	}
	if b[0] == 0 {
		return errors.New("xz: corrupt block header")
	}
	h, err := read(off, (int64(b[0])+1)*4)
	if err != nil {
		return err
	}
	flags := h[1]
	p := 2
	for _, bit := range []byte{0x40, 0x80} { // compressed, uncompressed size
		if flags&bit != 0 {
			if _, err := uvarint(h, &p); err != nil {
				return err
			}
		}
	}
	for i := 0; i < int(flags&3)+1; i++ {
		id, err := uvarint(h, &p)
		if err != nil {
			return err
		}
		n, err := uvarint(h, &p)
		if err != nil {
			return err
		}
		if n > uint64(len(h)-p) {
			return errors.New("xz: corrupt block header")
		}
		props := h[p : p+int(n)]
		p += int(n)
		if id == 0x21 && len(props) == 1 { // LZMA2
			dict, err := lzma.DecodeDictCap(props[0])
			if err != nil {
				return fmt.Errorf("xz: %w", err)
			}
			if dict > maxXZDict {
				return fmt.Errorf("xz stream asks for a %d MiB dictionary, more than %d MiB (memory exhaustion?)", dict>>20, maxXZDict>>20)
			}
		}
	}
	return nil
}

// uvarint decodes an xz multibyte integer at b[*p] and advances *p.
func uvarint(b []byte, p *int) (uint64, error) {
	var v uint64
	for i := 0; i < 9; i++ {
		if *p >= len(b) {
			return 0, errors.New("xz: truncated integer")
		}
		c := b[*p]
		*p++
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, nil
		}
	}
	return 0, errors.New("xz: integer too long")
}
