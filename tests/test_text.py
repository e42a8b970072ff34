"""Vietnamese normalisation: what citizens type must meet what the knowledge base says."""

import unicodedata

from knowledge.text import bigrams, fold, tokenize, typing_variants


def test_nfd_input_folds_like_nfc() -> None:
    nfc = "Đăng ký kết hôn"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    assert fold(nfd) == fold(nfc) == "dang ky ket hon"


def test_d_with_stroke_folds_to_d() -> None:
    assert fold("ĐỘC THÂN đơn") == "doc than don"


def test_old_and_new_tone_placement_meet() -> None:
    assert fold("hoà giải") == fold("hòa giải") == "hoa giai"
    assert tokenize("thủy") == tokenize("thuỷ")


def test_ki_and_ky_are_one_word() -> None:
    assert tokenize("đăng kí") == tokenize("đăng ký") == ["dang", "ky"]


def test_domain_abbreviations_expand() -> None:
    assert tokenize("sao y cccd") == ["sao", "y", "can", "cuoc", "cong", "dan"]
    assert tokenize("gks") == ["giay", "khai", "sinh"]
    assert tokenize("xnttHN") == ["xac", "nhan", "tinh", "trang", "hon", "nhan"]
    assert tokenize("đk hkd") == ["dang", "ky", "ho", "kinh", "doanh"]
    assert tokenize("giấy xn cư trú, hs gồm gì") == ["giay", "xac", "nhan", "cu", "tru", "ho",
                                                    "so", "gom", "gi"]
    assert tokenize("con 14t") == ["con", "14", "tuoi"]
    assert tokenize("2 gđ chung 1 hk") == ["2", "gia", "dinh", "chung", "1", "ho", "khau"]


def test_ca_is_the_police_only_before_a_unit() -> None:
    assert tokenize("CA xã cập nhật") == ["cong", "an", "xa", "cap", "nhat"]
    assert tokenize("ca sĩ") == ["ca", "si"]


def test_context_rules_decide_ambiguous_short_forms() -> None:
    assert tokenize("dk ks") == ["dang", "ky", "khai", "sinh"]
    assert tokenize("đk kt cho bố") == ["dang", "ky", "khai", "tu", "cho", "bo"]
    assert tokenize("dk kh") == ["dang", "ky", "ket", "hon"]
    # Outside that context "kh" is chat shorthand for "không".
    assert tokenize("có mất phí kh") == ["co", "mat", "phi", "khong"]
    # "hk" means hộ khẩu only next to residence words, else "không".
    assert tokenize("cắt hk") == ["cat", "ho", "khau"]
    assert tokenize("được hk") == ["duoc", "khong"]
    assert tokenize("chuyển hk về nhà ck") == ["chuyen", "ho", "khau", "ve", "nha", "chong"]


def test_chat_shorthand_without_clashing_with_the_domain() -> None:
    assert tokenize("lam j ntn, het bn tien") == [
        "lam", "gi", "nhu", "the", "nao", "het", "bao", "nhieu", "tien"]
    # "dc"/"đc" stays as typed: it clashes with "được" and is not expanded.
    assert tokenize("đc ko") == ["dc", "khong"]


def test_typing_slips_are_read_back() -> None:
    assert "nguyen" in typing_variants("nguyeenx")
    assert typing_variants("hoon") == ["hon"]
    assert typing_variants("khauu") == ["khau"]
    assert typing_variants("dag") == ["dang"]
    assert typing_variants("chih") == ["chinh"]
    assert typing_variants("khai") == []


def test_bigrams_join_adjacent_words() -> None:
    assert bigrams(["so", "do", "lan"]) == ["so_do", "do_lan"]
