"""Small policy sets written by the diff tests: a base and the drafts legal staff would write.

Each draft is the base text with one edit, the way staff make one (copy the folder, change a
line), so the tests exercise what the tool sees in practice. Not a test module itself.
"""

from __future__ import annotations

from pathlib import Path

CATALOGUE = """\
facts:
  uscc: {type: string, format: uscc, label: 统一社会信用代码}
  name: {type: string, label: 企业名称}
  district:
    type: enum
    label: 所属区县
    values: [中原区, 二七区, 金水区, 新密市]
  industrial: {type: boolean, label: 是否工业企业}
  untreated_outfalls: {type: integer, min: 0, max: 10000, label: 未治理到位排污口数}
  direct_discharge_cases: {type: integer, min: 0, max: 10000, label: 超标直排生态水系案件数}
  illegal_discharge_cases: {type: integer, min: 0, max: 10000, label: 其他违法排污案件数}
  high_pollution: {type: boolean, label: 是否高污染}
  high_energy: {type: boolean, label: 是否高耗能}
"""

WATER = """\
policy:
  id: test.water
  title: 截污奖惩措施
  authority: 郑州市人民政府
  document: 《截污奖惩措施》
  version: "2011"
  effective: 2011-01-01

parameters:
  deduction_per_untreated_outfall:
    type: integer
    unit: 元/个
    values:
      - from: 2011-01-01
        value: 1000000
        reference: 每个排污口扣款100万元
  deduction_per_direct_discharge_case:
    type: integer
    unit: 元/例
    values:
      - from: 2011-01-01
        value: 10000000
        reference: 一例一次1000万元

rules:
  - id: untreated_outfall_deduction
    title: 排污口未治理到位,每个扣款100万元
    citation:
      document: 《截污奖惩措施》
      article: 惩罚措施(一)
      text: 对生态水系内河道排污口未治理到位的责任单位实施财政扣款,每个排污口扣款100万元
    when: untreated_outfalls > 0
    findings:
      - kind: fiscal_deduction
        amount: deduction_per_untreated_outfall * untreated_outfalls
        payer: district

  - id: direct_discharge_deduction
    title: 工业企业超标直排,一例一次扣款1000万元
    citation:
      document: 《截污奖惩措施》
      article: 惩罚措施(二)
      text: 对工业企业生产废水超标直接排入生态水系的,给予一例一次1000万元的财政扣款
    when: industrial and direct_discharge_cases > 0
    findings:
      - kind: fiscal_deduction
        amount: deduction_per_direct_discharge_case * direct_discharge_cases
        payer: district

test_defaults:
  uscc: 91410100123456788Y
  name: 郑州示例化工有限公司
  district: 金水区
  industrial: true
  untreated_outfalls: 0
  direct_discharge_cases: 0
  illegal_discharge_cases: 0
  high_pollution: false
  high_energy: false

tests:
  - name: 三个排污口扣款300万元
    as_of: 2014-01-01
    given: {untreated_outfalls: 3}
    expect:
      findings:
        - {rule: untreated_outfall_deduction, amount_yuan: 3000000, payer: 金水区}
      total_yuan: 3000000
  - name: 一例直排扣款1000万元
    as_of: 2014-01-01
    given: {direct_discharge_cases: 1}
    expect:
      total_yuan: 10000000
"""

CREDIT = """\
policy:
  id: test.credit
  title: 绿色信贷共享机制
  authority: 郑州市环境保护局
  document: 绿色信贷共享机制
  version: "2012"
  effective: 2012-04-14

lists:
  green_credit_blacklist:
    title: 绿色信贷黑名单

rules:
  - id: illegal_discharge_blacklist
    title: 违法排污企业列入绿色信贷黑名单
    citation:
      document: 绿色信贷共享机制
      article: 四、(三)
      text: 对违法企业信息及时汇总,与金融机构实现信息共享
    when: illegal_discharge_cases > 0 or direct_discharge_cases > 0
    sanctions:
      - list: green_credit_blacklist
        reason: 存在已查实的违法排污案件
"""

# The four drafts the issue names: each one edit of the base.
RAISE_FROM_2013 = (
    WATER,
    "        reference: 每个排污口扣款100万元\n",
    "        reference: 每个排污口扣款100万元\n"
    "      - from: 2013-01-01\n"
    "        value: 1500000\n"
    "        reference: 草案:每个排污口扣款150万元\n",
)

NEW_RULE = """
  - id: high_pollution_outfall_surcharge
    title: 高污染企业排污口未治理到位,每个加扣50万元
    citation:
      document: 《截污奖惩措施(修订草案)》
      article: 惩罚措施(三)
      text: 高污染企业的排污口未治理到位的,每个排污口另行扣款50万元
    when: high_pollution and untreated_outfalls > 0
    findings:
      - kind: fiscal_deduction
        amount: 500000 * untreated_outfalls
        payer: district
"""
ADD_RULE = (WATER, "\ntest_defaults:", NEW_RULE + "\ntest_defaults:")

_DIRECT_RULE_START = WATER.index("  - id: direct_discharge_deduction")
_DIRECT_RULE_END = WATER.index("test_defaults:")
REMOVE_RULE = (WATER, WATER[_DIRECT_RULE_START:_DIRECT_RULE_END], "\n")


def edited(edit: tuple[str, str, str]) -> str:
    text, old, new = edit
    assert text.count(old) == 1, f"edit target not unique: {old!r}"
    return text.replace(old, new)


def raise_moved_to_july() -> str:
    """The raise from 2013-01-01 postponed to 2013-07-01: a parameter date change."""
    return edited(RAISE_FROM_2013).replace("- from: 2013-01-01", "- from: 2013-07-01")


def write_set(folder: Path, water: str | None = WATER, credit: str | None = CREDIT) -> Path:
    """A policy folder: the catalogue plus the given policy texts (None leaves one out)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "registry.yaml").write_text(CATALOGUE, encoding="utf-8")
    if water is not None:
        (folder / "water.yaml").write_text(water, encoding="utf-8")
    if credit is not None:
        (folder / "credit.yaml").write_text(credit, encoding="utf-8")
    return folder


# A registry as staff export it (Chinese headers), hand-made so that every figure of the tests
# can be checked by hand. Districts are valid in both the test and the shipped catalogues.
REGISTRY_HEADER = "统一社会信用代码,企业名称,所属区县,是否工业企业,未治理到位排污口数,超标直排生态水系案件数,其他违法排污案件数,是否高污染,是否高耗能"
REGISTRY_ROWS = [
    # uscc, name, district, industrial, outfalls, direct, illegal, high pollution, high energy
    ("91410105125235487K", "郑州鑫源化工有限公司", "金水区", "true", 3, 0, 0, "false", "false"),
    ("91410105172022230J", "郑州恒泰商贸有限公司", "金水区", "false", 1, 0, 0, "false", "false"),
    ("914101051541737054", "郑州宏达铝业有限公司", "二七区", "true", 0, 2, 0, "false", "false"),
    ("91410105MA7M95GC2U", "郑州瑞丰印染有限公司", "二七区", "true", 2, 0, 0, "true", "false"),
    ("91410105MA2LUTPK5M", "郑州金龙科技有限公司", "中原区", "false", 0, 0, 0, "false", "false"),
    ("914101057931524682", "郑州华夏餐饮管理有限公司", "中原区", "false", 0, 1, 0, "false", "false"),
    ("91410105MA7Q23A81M", "新密市聚鼎耐火材料有限公司", "新密市", "true", 0, 0, 1, "false", "true"),
    ("91410105MAG610WB0P", "新密市天中纸业有限公司", "新密市", "true", 1, 1, 0, "false", "false"),
    ("914101056629895088", "郑州博创电镀有限公司", "中原区", "true", 5, 0, 0, "true", "false"),
    ("91410105MAX71F0XXA", "郑州校验码错误有限公司", "金水区", "true", 4, 0, 0, "false", "false"),
    ("91410105449107967H", "郑州佳美服饰有限公司", "金水区", "true", 0, 0, 0, "true", "false"),
    ("91410105MAQCNN3C0D", "郑州顺利物流有限公司", "二七区", "false", 0, 0, 0, "false", "false"),
]
# Row 10 has a wrong check character: rejected by both sets, in no figure.


def write_registry(path: Path) -> Path:
    lines = [REGISTRY_HEADER] + [",".join(str(v) for v in row) for row in REGISTRY_ROWS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
