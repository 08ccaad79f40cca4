"""Analysis → Calibrate for this site…: ``lunglens calibrate`` for people who do not use a terminal.

Three pages. (1) Which films: folders sorted into NORMAL and PNEUMONIA (one or more), or the
reader verdicts stored in the worklist; the films of each class are counted before anything
runs, and a set that cannot support a calibration is refused there, with the reason (one
class only, fewer than 20 of a class). (2) The model runs on the films, off the GUI thread,
with progress; Cancel or Back stops it. (3) The ROC curve, the reliability diagram and the
proposed operating points with their 95 % intervals; the user picks the default point and
names the profile, and Finish keeps it (with its plots) in the private per-user folder and
makes it the one in use.

Measuring and fitting is the code ``lunglens calibrate`` runs (:func:`inference.site_calibration.measure`,
:func:`~inference.site_calibration.verdict_films`, :func:`~inference.site_calibration.calibrate`),
so the wizard and the command make the same profile from the same films; keeping it
(:func:`inference.profile_library.keep`) draws the same plots beside it. Nothing is written
before Finish, so a cancelled run leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass, field
from datetime import date
from html import escape
from pathlib import Path
import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from inference.calibration import DEFAULT_TARGET, MIN_PER_CLASS, CalibrationDataError, check_counts
from inference.engine import Engine
from inference.prediction import ModelInfo
from inference.presentation import calibration_note, figures_text, point_text, target_note
from inference.profile import UNCALIBRATED, SiteProfile
from inference.profile_library import keep
from inference.site_calibration import (
    VERDICTS_SOURCE,
    Measured,
    WorklistFilms,
    calibrate,
    films_text,
    folders_source,
    label_check_note,
    measure,
    verdict_films,
)
from inference.sitefilms import LABELS, LabelError, LabelledFilm, from_folders
from inference.worklist import Worklist

from .. import theme
from ..background import BackgroundTask, TaskControl
from ..platform_quirks import fit_top_level
from ..settings import AppSettings
from .qt_reliability_plot import ReliabilityPlot
from .qt_roc_plot import RocPlot
from .qt_site_calibration import profile_html

FOLDERS, VERDICTS = "folders", "verdicts"
RADIO_STYLE = (f"QRadioButton::indicator {{ width: 12px; height: 12px; border-radius: 7px; "
               f"border: 1px solid {theme.TEXT_DIM}; background: {theme.BASE}; }}"
               f"QRadioButton::indicator:checked {{ border: 1px solid {theme.ACCENT}; "
               f"background: qradialgradient(cx:0.5, cy:0.5, radius:0.5, fx:0.5, fy:0.5, "
               f"stop:0 {theme.ACCENT}, stop:0.55 {theme.ACCENT}, stop:0.65 {theme.BASE}); }}"
               f"QRadioButton {{ spacing: 8px; }}")


@dataclass
class FilmSet:
    """What page 1 found: the films (folders) or the verdicts (worklist), counted per class."""

    kind: str  # FOLDERS or VERDICTS
    description: str  # how the profile will name them
    films: list[LabelledFilm] = field(default_factory=list)  # FOLDERS
    verdicts: WorklistFilms | None = None  # VERDICTS
    problem: str = ""  # why these cannot be calibrated on ("" when they can)

    @property
    def labels(self) -> list[int]:
        return [f.label for f in self.films] if self.verdicts is None else list(self.verdicts.measured.labels)

    @property
    def counts(self) -> tuple[int, int]:
        """(NORMAL, PNEUMONIA)."""
        y = np.asarray(self.labels)
        return int((y == 0).sum()), int((y == 1).sum())


@dataclass
class CalibrationRun:
    """What page 2 made: the fitted profile (not yet saved), or why there is none."""

    profile: SiteProfile | None
    measured: Measured
    skipped: dict[str, int] = field(default_factory=dict)  # worklist studies left out, by reason
    problem: str = ""


def find_films(kind: str, folders: list[Path], worklist_path: Path | None, model: ModelInfo) -> FilmSet:
    """Collect and count the labelled films (a background job: folders may be on a slow share)."""
    if kind == VERDICTS:
        if worklist_path is None:
            return FilmSet(kind, VERDICTS_SOURCE, problem="The worklist is not available, so there are no verdicts.")
        with Worklist(worklist_path, read_only=True) as worklist:
            found = FilmSet(kind, VERDICTS_SOURCE, verdicts=verdict_films(worklist.with_verdicts(), model))
        if not found.labels:
            found.problem = ("No usable reader verdicts yet: mark studies “pneumonia” (Shift+P) or "
                             "“no pneumonia” (Shift+N) in the window first.")
    else:
        if not folders:
            return FilmSet(kind, "", problem="Add at least one folder.")
        try:
            found = FilmSet(kind, folders_source(folders), films=from_folders(folders))
        except LabelError as exc:
            return FilmSet(kind, "", problem=str(exc))
        if not found.films:
            found.problem = (f"No films found in folders named {' or '.join(LABELS)} under "
                             f"{', '.join(str(f) for f in folders)}.")
    if not found.problem:
        try:
            check_counts(np.asarray(found.labels))
        except CalibrationDataError as exc:
            found.problem = f"Cannot calibrate on these: {exc}."
    return found


def run_calibration(films: FilmSet, target: float, provider: str, threads: int | None,
                    control: TaskControl) -> CalibrationRun | None:
    """Measure the films and fit a profile (a background job); None when cancelled."""
    control.stage("Loading the model…")
    engine = Engine.load(provider=provider, threads=threads, profile=UNCALIBRATED)
    skipped: dict[str, int] = {}
    if films.verdicts is not None:
        measured, skipped = films.verdicts.measured, dict(films.verdicts.skipped)
    else:
        control.stage("Analysing the films…")
        measured = measure(engine, films.films, progress=control.progress, cancelled=control.cancelled)
    if control.cancelled():
        return None
    control.stage("Fitting the calibration and the operating points…")
    try:
        profile = calibrate(engine, measured, name=f"Site calibration {date.today():%Y-%m-%d}",
                            description=films.description, target_sensitivity=target)
    except CalibrationDataError as exc:
        left_out = f" ({measured.left_out()})" if measured.left_out() else ""
        return CalibrationRun(None, measured, skipped, problem=f"Cannot calibrate: {exc}{left_out}.")
    return CalibrationRun(profile, measured, skipped)


def _were(items: Sized) -> str:
    return "was" if len(items) == 1 else "were"


def _dim(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("dim")
    label.setWordWrap(True)
    return label


class SourcePage(QWizardPage):
    """Page 1: labelled folders or the worklist's verdicts, counted before going on."""

    def __init__(self, wizard: CalibrationWizard) -> None:
        super().__init__()
        self.setTitle("Which films?")
        self.setSubTitle("Films whose diagnosis this site knows. LungLens measures itself on them and sets "
                         "its calibration and review thresholds from what it finds.")
        self._wizard = wizard
        self.found: FilmSet | None = None
        self._task: BackgroundTask | None = None
        self.use_folders = QRadioButton("Films sorted into folders named NORMAL and PNEUMONIA (at any depth)")
        self.use_verdicts = QRadioButton("The reader verdicts given in this app (the model is not run again)")
        self.use_verdicts.setEnabled(wizard.worklist_path is not None)
        group = QButtonGroup(self)
        for b in (self.use_folders, self.use_verdicts):
            group.addButton(b)
        self.use_folders.setChecked(True)
        self.folders = QListWidget()
        self.folders.setAccessibleName("Folders of labelled films")
        self.add_button = QPushButton("Add Folder…")
        self.remove_button = QPushButton("Remove")
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        self.target = QDoubleSpinBox()
        self.target.setRange(50.0, 99.0)
        self.target.setDecimals(1)
        self.target.setSingleStep(1.0)
        self.target.setSuffix(" %")
        self.target.setValue(DEFAULT_TARGET * 100)
        self.target.setAccessibleName("Target sensitivity")
        self.target.setMaximumWidth(120)
        self.counts = QLabel()
        self.counts.setWordWrap(True)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(f"color: {theme.WARNING};")

        lay = QVBoxLayout(self)
        lay.addWidget(self.use_folders)
        indent = QVBoxLayout()
        indent.setContentsMargins(24, 0, 0, 6)
        indent.addWidget(self.folders)
        indent.addLayout(buttons)
        lay.addLayout(indent)
        lay.addWidget(self.use_verdicts)
        lay.addSpacing(8)
        form = QFormLayout()
        form.addRow("Target sensitivity", self.target)
        lay.addLayout(form)
        lay.addWidget(_dim("The high-sensitivity point is the most specific threshold whose sensitivity reaches "
                           "this target with 95 % confidence. The balanced point is Youden's."))
        lay.addSpacing(8)
        lay.addWidget(self.counts)
        lay.addWidget(self.problem)
        lay.addStretch(1)

        self.use_folders.toggled.connect(self._recount)
        self.add_button.clicked.connect(self._add_dialog)
        self.remove_button.clicked.connect(self._remove_selected)
        self._recount()

    @property
    def kind(self) -> str:
        return FOLDERS if self.use_folders.isChecked() else VERDICTS

    @property
    def target_sensitivity(self) -> float:
        return self.target.value() / 100.0

    def folder_paths(self) -> list[Path]:
        return [Path(self.folders.item(i).text()) for i in range(self.folders.count())]

    def add_folder(self, folder: str | Path) -> None:
        if Path(folder) not in self.folder_paths():
            self.folders.addItem(str(folder))
        self.use_folders.setChecked(True)
        self._recount()

    def isComplete(self) -> bool:
        return self.found is not None and not self.found.problem

    def _add_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A folder of labelled films", self._wizard.settings.last_dir)
        if folder:
            self.add_folder(folder)

    def _remove_selected(self) -> None:
        for item in self.folders.selectedItems():
            self.folders.takeItem(self.folders.row(item))
        self._recount()

    def _recount(self) -> None:
        """Count the films of the chosen source in the background; the newest request wins."""
        self.folders.setEnabled(self.kind == FOLDERS)
        self.add_button.setEnabled(self.kind == FOLDERS)
        self.remove_button.setEnabled(self.kind == FOLDERS)
        if self._task is not None:
            self._task.cancel()
        self.found = None
        self.counts.setText("Counting the films…")
        self.problem.setText("")
        self.completeChanged.emit()
        kind, folders, wl, model = self.kind, self.folder_paths(), self._wizard.worklist_path, self._wizard.model
        task = BackgroundTask(lambda _control: find_films(kind, folders, wl, model), name="lunglens-count-films")
        task.succeeded.connect(lambda found, t=task: self._counted(t, found))
        task.failed.connect(lambda reason, t=task: self._counted(t, FilmSet(kind, "", problem=reason)))
        self._task = task.start()

    def _counted(self, task: BackgroundTask, found: FilmSet) -> None:
        if task is not self._task:
            return  # an earlier request, overtaken
        self._task = None
        self.found = found
        normal, pneumonia = found.counts
        text = (f"Found <b>{normal}</b> NORMAL and <b>{pneumonia}</b> PNEUMONIA "
                f"{'studies with a verdict' if found.kind == VERDICTS else 'films'} "
                f"(at least {MIN_PER_CLASS} of each are needed).")
        if found.verdicts is not None and found.verdicts.skipped:
            left = ", ".join(f"{n} {reason}" for reason, n in found.verdicts.skipped.items())
            text += f"<br><span style='color:{theme.TEXT_DIM}'>Left out: {escape(left)}.</span>"
        self.counts.setText(text if found.labels else "")
        self.problem.setText(found.problem)
        self.completeChanged.emit()

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


class RunPage(QWizardPage):
    """Page 2: the model runs on the films in the background, with progress."""

    def __init__(self, wizard: CalibrationWizard) -> None:
        super().__init__()
        self.setTitle("Measuring LungLens on these films")
        self.setSubTitle("The window stays usable meanwhile. Cancel or Back stops the run; nothing is saved "
                         "until you press Finish on the next page.")
        self._wizard = wizard
        self.run: CalibrationRun | None = None
        self.task: BackgroundTask | None = None
        self.stage = QLabel()
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.count = _dim("")
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(f"color: {theme.WARNING};")
        lay = QVBoxLayout(self)
        lay.addWidget(self.stage)
        lay.addWidget(self.bar)
        lay.addWidget(self.count)
        lay.addWidget(self.problem)
        lay.addStretch(1)

    def initializePage(self) -> None:
        source = self._wizard.source
        films, target, settings = source.found, source.target_sensitivity, self._wizard.settings
        provider, threads = settings.provider, settings.threads or None  # QSettings stays on this thread
        self.run = None
        self.problem.setText("")
        self.count.setText("")
        self.bar.setRange(0, 0)  # busy until the first film is done
        task = BackgroundTask(lambda control: run_calibration(films, target, provider, threads, control),
                              name="lunglens-calibrate")
        # Reports of a run stopped by Back are ignored: only the current task's count.
        task.stage.connect(lambda text, t=task: t is self.task and self.stage.setText(text))
        task.progress.connect(lambda done, total, t=task: t is self.task and self._progress(done, total))
        task.succeeded.connect(lambda run, t=task: t is self.task and self._finished(run))
        task.failed.connect(lambda reason, t=task: t is self.task and self._failed(reason))
        self.task = task.start()

    def cleanupPage(self) -> None:  # Back: stop the run, forget it
        self.cancel()

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None
        self.run = None

    def isComplete(self) -> bool:
        return self.run is not None and self.run.profile is not None

    def _progress(self, done: int, total: int) -> None:
        self.bar.setRange(0, total)
        self.bar.setValue(done)
        self.count.setText(f"{done} of {total} films analysed")

    def _finished(self, run: CalibrationRun) -> None:
        self.task = None
        self.run = run
        self.bar.setRange(0, 1)
        self.bar.setValue(1)
        failed = len(run.measured.errors)
        if failed:
            self.count.setText(f"{failed} film{'s' if failed > 1 else ''} could not be analysed and "
                               f"{'were' if failed > 1 else 'was'} left out: "
                               + "; ".join(run.measured.errors[:5]) + ("…" if failed > 5 else ""))
        self.problem.setText(run.problem)
        self.stage.setText("Done." if run.profile is not None else "Stopped.")
        self.completeChanged.emit()
        if run.profile is not None:
            self._wizard.next()

    def _failed(self, reason: str) -> None:
        self.task = None
        self.stage.setText("Stopped.")
        self.problem.setText(f"The run failed: {reason}")
        self.bar.setRange(0, 1)
        self.bar.setValue(0)


class ResultPage(QWizardPage):
    """Page 3: plots, proposed operating points, the default and the name; Finish keeps it."""

    def __init__(self, wizard: CalibrationWizard) -> None:
        super().__init__()
        self.setTitle("The proposed profile")
        self.setSubTitle("Choose the operating point LungLens should use by default, and name the profile. "
                         "Save and Use keeps it in your LungLens profile folder and puts it in use.")
        self._wizard = wizard
        self.profile: SiteProfile | None = None
        self.saving: BackgroundTask | None = None
        self.points = QButtonGroup(self)
        self.points_box = QVBoxLayout()
        self._figures: list[QLabel] = []  # each point's figures, under its button
        self.name = QLineEdit()
        self.name.setAccessibleName("Profile name")
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.note = _dim("")
        # What the choice below must be made knowing (a target these films cannot show, a
        # default point that flags most normal films): above the choice, not in the grey notes.
        self.caution = QLabel()
        self.caution.setWordWrap(True)
        self.caution.setStyleSheet(f"color: {theme.WARNING};")
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(f"color: {theme.WARNING};")
        self.roc = RocPlot()
        self.reliability = ReliabilityPlot()

        left = QVBoxLayout()
        left.addWidget(self.details)
        left.addWidget(self.caution)
        heading = QLabel("<b>Default operating point</b>")
        left.addWidget(heading)
        left.addLayout(self.points_box)
        form = QFormLayout()
        form.addRow("Name", self.name)
        left.addLayout(form)
        left.addWidget(self.note)
        left.addWidget(self.problem)
        left.addStretch(1)
        plots = QVBoxLayout()
        plots.addWidget(self.roc, 1)
        plots.addWidget(self.reliability, 1)
        lay = QHBoxLayout(self)
        left_box = QWidget()
        left_box.setLayout(left)
        left_box.setMinimumWidth(430)
        left_box.setMaximumWidth(480)
        lay.addWidget(left_box)
        lay.addLayout(plots, 1)
        self.name.textChanged.connect(lambda _: self.completeChanged.emit())
        self.points.idToggled.connect(lambda _id, on: on and self._show_choice())

    def initializePage(self) -> None:
        run = self._wizard.runner.run
        self.profile = run.profile if run is not None else None
        self.problem.setText("")
        self.caution.hide()
        for button in self.points.buttons():
            self.points.removeButton(button)
            button.deleteLater()
        for label in self._figures:
            label.deleteLater()
        self._figures = []
        if self.profile is None:
            return
        self.points.blockSignals(True)
        for i, op in enumerate(self.profile.operating_points.values()):
            button = QRadioButton(point_text(op))
            button.setProperty("point", op.name)
            figures = _dim(figures_text(op))  # wrapped under its button (a radio button's text cannot wrap)
            figures.setContentsMargins(28, 0, 0, 6)
            button.setAccessibleDescription(figures.text())
            self.points.addButton(button, i)
            self.points_box.addWidget(button)
            self.points_box.addWidget(figures)
            self._figures.append(figures)
            button.setChecked(op.name == self.profile.default_operating_point)
        self.points.blockSignals(False)
        self.name.setText(self.profile.name)
        self.details.setText(profile_html(self.profile, points=False))  # the points are the choices below
        self.roc.set_profile(self.profile)
        self.reliability.set_profile(self.profile)
        notes = [f"All figures are measured on the {self.profile.n_normal + self.profile.n_pneumonia} films that also "
                 "set the thresholds: expect somewhat lower figures on new films."]
        cautions = [text for text in (target_note(self.profile), label_check_note(run.measured, self.profile)) if text]
        self.caution.setText(" ".join(cautions))
        self.caution.setVisible(bool(cautions))
        if tempered := calibration_note(self.profile):
            notes.append(tempered)
        if run.skipped:
            notes.append("Left out of the worklist: " + ", ".join(f"{n} {r}" for r, n in run.skipped.items()) + ".")
        if run.measured.errors:
            notes.append(f"{films_text(len(run.measured.errors))} could not be used and {_were(run.measured.errors)} "
                         "left out.")
        if run.measured.duplicates:
            notes.append(f"{films_text(len(run.measured.duplicates))} holding the same image as another film "
                         f"{_were(run.measured.duplicates)} left out: each image is counted once.")
        if outside := run.measured.outside:
            notes.append(f"{films_text(len(outside))} the input gate called not reliable (outside the model's intended "
                         f"use) {_were(outside)} left out, as no threshold applies to them: "
                         + "; ".join(path.name for path in list(outside)[:5]) + ("…" if len(outside) > 5 else "")
                         + ".")
        if grouping := run.measured.resampled().note:
            notes.append(grouping[:1].upper() + grouping[1:] + ".")
        self.note.setText(" ".join(notes))
        self._show_choice()

    @property
    def default_point(self) -> str:
        button = self.points.checkedButton()
        return str(button.property("point")) if button is not None else ""

    def isComplete(self) -> bool:
        return self.profile is not None and bool(self.name.text().strip()) and self.saving is None

    def validatePage(self) -> bool:
        """Finish: save in the background; the wizard closes once the profile is kept (its
        accept() asks this page again, and then it is)."""
        if self._wizard.saved_path is not None:
            return True
        if self.profile is None or self.saving is not None:
            return False
        profile = self.profile.chosen(self.name.text().strip(), self.default_point)
        self.saving = BackgroundTask(lambda _control: keep(profile),
                                     name="lunglens-keep-profile")
        self.saving.succeeded.connect(self._saved)
        self.saving.failed.connect(self._not_saved)
        self.saving.start()
        self.completeChanged.emit()
        return False

    def _saved(self, path: Path) -> None:
        self.saving = None
        self._wizard.saved_path = path
        self._wizard.saved.emit(path)
        self._wizard.accept()

    def _not_saved(self, reason: str) -> None:
        self.saving = None
        self.problem.setText(f"The profile could not be saved: {reason}")
        self.completeChanged.emit()

    def _show_choice(self) -> None:
        self.roc.set_default(self.default_point)


class CalibrationWizard(QWizard):
    """See the module docstring. ``saved`` carries the kept profile's path; the caller activates it."""

    saved = Signal(object)  # Path of the kept profile

    def __init__(self, settings: AppSettings, model: ModelInfo, worklist_path: Path | None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Calibrate LungLens for this site")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.settings = settings
        self.model = model
        self.worklist_path = worklist_path
        self.saved_path: Path | None = None
        self.source = SourcePage(self)
        self.runner = RunPage(self)
        self.result = ResultPage(self)
        for page in (self.source, self.runner, self.result):
            self.addPage(page)
        self.setButtonText(QWizard.WizardButton.FinishButton, "Save and Use")
        # The dark palette draws radio buttons almost black on black: the choice must be seen.
        self.setStyleSheet(RADIO_STYLE)
        fit_top_level(self)
        self.resize(1040, 760)

    def done(self, result: int) -> None:
        """Closing (Cancel, Esc, Finish) stops whatever still runs; nothing half-made is kept."""
        self.source.cancel()
        self.runner.cancel()
        super().done(result)
