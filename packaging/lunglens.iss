; Inno Setup 6 script: one LungLens-<version>-setup.exe from the PyInstaller bundle.
;
; NOT BUILT OR TESTED in this repository's CI (Linux only). Build on Windows 10/11 x64:
;   py -3.11 -m venv .venv && .venv\Scripts\pip install -e ".[package]"
;   .venv\Scripts\python packaging\build.py          (makes dist\lunglens\ with LungLens.exe)
;   "C:\Program Files (x86)\Inno Setup 6\ISCC.exe" /DAppVersion=0.1.0 packaging\lunglens.iss
; Output: dist\LungLens-0.1.0-setup.exe. See packaging/README.md for the checks to run after.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppName "LungLens"
#define BundleDir "..\dist\lunglens"

[Setup]
AppId={{6F1E2B1C-4C7A-4E59-9C3B-5A8D0F2E7B41}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=LungLens developers
AppComments=Offline chest X-ray pneumonia triage. Decision support, not a diagnostic device.
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
; Per-user install without admin rights is allowed (hospital PCs often have no admin).
PrivilegesRequired=admin
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir=..\dist
OutputBaseFilename={#AppName}-{#AppVersion}-setup
SetupIconFile=..\resources\icons\lunglens.ico
UninstallDisplayIcon={app}\LungLens.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "dcmassoc"; Description: "Offer LungLens in ""Open with"" for DICOM (.dcm) files"; Flags: unchecked

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\LungLens.exe"
Name: "{group}\{#AppName} self-test"; Filename: "{cmd}"; Parameters: "/k ""{app}\lunglens-cli.exe"" --self-test"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\LungLens.exe"; Tasks: desktopicon

[Registry]
; "Open with" only: never take over the .dcm default from the site's PACS viewer.
Root: HKA; Subkey: "Software\Classes\.dcm\OpenWithProgids"; ValueType: string; ValueName: "LungLens.dcm"; ValueData: ""; Flags: uninsdeletevalue; Tasks: dcmassoc
Root: HKA; Subkey: "Software\Classes\LungLens.dcm"; ValueType: string; ValueName: ""; ValueData: "DICOM image"; Flags: uninsdeletekey; Tasks: dcmassoc
Root: HKA; Subkey: "Software\Classes\LungLens.dcm\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\LungLens.exe,0"; Tasks: dcmassoc
Root: HKA; Subkey: "Software\Classes\LungLens.dcm\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\LungLens.exe"" ""%1"""; Tasks: dcmassoc

[Run]
Filename: "{app}\LungLens.exe"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent
