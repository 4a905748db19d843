"""The eval suites vsdcoder knows: where each data set comes from, its files and checksums.

The data sets are third-party and never part of vsdcoder: ``vsdcoder evals fetch NAME``
downloads the original files from their public source (:mod:`vsdcoder.suites.download`),
``vsdcoder evals build NAME`` turns them into the suite's ``data.csv`` and ``gold.csv``
(:mod:`vsdcoder.suites.build`). Every file is pinned by its SHA-256, so a suite built anywhere
is byte-identical to the one the recorded results were measured on.
"""

from __future__ import annotations

from dataclasses import dataclass

from vsdcoder.errors import UsageError

#: Where GitHub serves a repository's files at a commit (``RAW/<owner>/<repo>/<commit>/<path>``).
RAW_BASE = "https://raw.githubusercontent.com"


@dataclass(frozen=True)
class SourceFile:
    """One file of a data set as the suite uses it.

    Attributes:
        path: Where the file lives in the suite's source folder (e.g.
            ``2_splits/ConvAbuseEMNLPtest.csv``); the same layout as the team's shared copy.
        sha256: SHA-256 of that file (hex).
        download: Path of what is downloaded, relative to the repository at the pinned commit.
            The same as ``path`` unless the file comes inside an archive.
        member: When ``download`` is a zip archive, the file name of the member that becomes
            ``path`` (only that member is extracted; ``sha256`` is the member's).
    """

    path: str
    sha256: str
    download: str
    member: str | None = None


@dataclass(frozen=True)
class Suite:
    """An eval suite built from a public, human-coded data set.

    Attributes:
        name: The suite's name (``vsdcoder evals build NAME``).
        title: One line saying what the data set is.
        codebook: The codebook the suite is coded with.
        units: Units in the built suite.
        github: ``owner/repository`` the data set is published in.
        commit: The commit the files are pinned to.
        files: Every file fetched (the builder reads ``input``, one of them).
        input: ``path`` of the file the builder reads.
        builder: ``module:function`` turning ``input`` into ``data.csv`` and ``gold.csv``.
        licence: The data set's licence.
        licence_url: Where its text is.
        citation: The reference to cite.
        doi: The DOI of that reference.
        note: Anything else a user must know about the source (shown by ``evals list``).
    """

    name: str
    title: str
    codebook: str
    units: int
    github: str
    commit: str
    files: tuple[SourceFile, ...]
    input: str
    builder: str
    licence: str
    licence_url: str
    citation: str
    doi: str
    note: str = ""

    @property
    def repository(self) -> str:
        """The data set's repository on GitHub, at the pinned commit."""
        return f"https://github.com/{self.github}/tree/{self.commit}"

    def url(self, file: SourceFile, base_url: str | None = None) -> str:
        """Where ``file`` is downloaded from (``base_url`` replaces ``RAW_BASE``)."""
        base = (base_url or RAW_BASE).rstrip("/")
        return f"{base}/{self.github}/{self.commit}/{file.download}"

    def input_file(self) -> SourceFile:
        """The :class:`SourceFile` the builder reads."""
        return next(f for f in self.files if f.path == self.input)


SAD = Suite(
    name="sad",
    title="SAD, Stress Annotated Dataset v1: everyday stressors, 5 crowd raters' majority; "
          "a seeded subset of 34 messages per category",
    codebook="sad-stressors",
    units=306,
    github="PervasiveWellbeingTech/Stress-Annotated-Dataset-SAD",
    commit="1d6aa672c4eeb82e0bbc6533b75e0694da80ae20",
    files=(
        # The zip's own checksum is not pinned (it could not be fetched when this was written);
        # the member it holds is, and is verified after extraction.
        SourceFile(path="SAD_v1_unzipped/SAD_v1.xlsx",
                   sha256="020e2b60ab32eb75a6f28fac8094b2acfffa76b4db5a659a765f6b0f7fd39f40",
                   download="SAD_v1.zip", member="SAD_v1.xlsx"),
    ),
    input="SAD_v1_unzipped/SAD_v1.xlsx",
    builder="vsdcoder.suites.sad:make_subset",
    licence="MIT",
    licence_url="https://github.com/PervasiveWellbeingTech/Stress-Annotated-Dataset-SAD",
    citation="Mauriello, M. L., Lincoln, E. T., Hon, G., Simon, D., Jurafsky, D., & Paredes, "
             "P. E. (2021). SAD: A Stress Annotated Dataset for Recognizing Everyday Stressors "
             "in SMS-like Conversational Systems. CHI '21 Extended Abstracts. ACM.",
    doi="10.1145/3411763.3451799",
    note="the SHA-256 pinned is that of SAD_v1.xlsx inside SAD_v1.zip, checked after "
         "extracting it",
)

CONVABUSE = Suite(
    name="convabuse",
    title="ConvAbuse test split: abuse towards two chatbots, every annotator's labels "
          "(content warning: abusive text)",
    codebook="convabuse",
    units=853,
    github="amandacurry/convabuse",
    commit="c0a9469f48956e868276c605d499010ea3c7c0d0",
    files=tuple(
        SourceFile(path=f"2_splits/ConvAbuseEMNLP{split}.csv", sha256=sha,
                   download=f"2_splits/ConvAbuseEMNLP{split}.csv")
        for split, sha in (
            ("train", "23abab3eff791d0e8cac681cec15a5ef299ed052699e4fca762d1d4640c36936"),
            ("valid", "a28bc3083fe3ea305b8c417539a20fda7e68057dc06365507b85c46b60e65443"),
            ("test", "8387d70332cd2245a095240534629152dd5729e8e9556e91b6b20dabdc0bb9d0"),
        )
    ),
    input="2_splits/ConvAbuseEMNLPtest.csv",
    builder="vsdcoder.suites.convabuse:make_subset",
    licence="CC BY 4.0",
    licence_url="https://creativecommons.org/licenses/by/4.0/",
    citation="Cercas Curry, A., Abercrombie, G., & Rieser, V. (2021). ConvAbuse: Data, "
             "Analysis, and Benchmarks for Nuanced Abuse Detection in Conversational AI. "
             "Proceedings of EMNLP 2021, 7388–7403. ACL.",
    doi="10.18653/v1/2021.emnlp-main.587",
)

#: Every suite, by name.
SUITES: dict[str, Suite] = {s.name: s for s in (SAD, CONVABUSE)}


def get_suite(name: str) -> Suite:
    """The suite called ``name``.

    Raises:
        UsageError: No suite has that name (the message lists the known ones).
    """
    try:
        return SUITES[name]
    except KeyError:
        raise UsageError(f"no eval suite {name!r}; the suites are: {', '.join(SUITES)} "
                         "(see `vsdcoder evals list`)") from None
