package central

import (
	"fmt"
	"strconv"
)

// s10Weights are the UPU S10 check digit weights.
var s10Weights = [8]int{8, 6, 4, 2, 3, 5, 9, 7}

// S10CheckDigit is the UPU S10 check digit of an 8-digit serial: c = 11 −
// (Σ dᵢwᵢ mod 11), 10 → 0, 11 → 5.
func S10CheckDigit(serial string) int {
	sum := 0
	for i := 0; i < 8 && i < len(serial); i++ {
		sum += int(serial[i]-'0') * s10Weights[i]
	}
	switch c := 11 - sum%11; c {
	case 10:
		return 0
	case 11:
		return 5
	default:
		return c
	}
}

// ParcelID is a valid UPU S10 parcel id for serial n (mod 10⁸), service
// "RR", country "CN": ParcelID(12345678) = "RR123456785CN".
func ParcelID(n int) string {
	serial := fmt.Sprintf("%08d", mod(n, 100_000_000))
	return "RR" + serial + strconv.Itoa(S10CheckDigit(serial)) + "CN"
}

// GS1CheckDigit is the GS1 mod-10 check digit of digits (weights 3, 1, 3, …
// from the right).
func GS1CheckDigit(digits string) int {
	sum := 0
	for i := 0; i < len(digits); i++ {
		d := int(digits[len(digits)-1-i] - '0')
		if i%2 == 0 {
			d *= 3
		}
		sum += d
	}
	return (10 - sum%10) % 10
}

// SSCC is a valid 18-digit GS1 SSCC for serial n (mod 10⁹): extension 0,
// company prefix 6901234, serial, check digit.
func SSCC(n int) string {
	body := fmt.Sprintf("06901234%09d", mod(n, 1_000_000_000))
	return body + strconv.Itoa(GS1CheckDigit(body))
}

// ULDID is a ULD id for serial n (mod 10⁵): "AKE" + 5 digits + "MU".
func ULDID(n int) string {
	return fmt.Sprintf("AKE%05dMU", mod(n, 100_000))
}

// AWBID is a valid normalized 11-digit air waybill number for serial n (mod
// 10⁷), airline prefix 784: the last digit is the serial mod 7.
func AWBID(n int) string {
	s := mod(n, 10_000_000)
	return fmt.Sprintf("784%07d%d", s, s%7)
}

func mod(n, m int) int {
	n %= m
	if n < 0 {
		n += m
	}
	return n
}
