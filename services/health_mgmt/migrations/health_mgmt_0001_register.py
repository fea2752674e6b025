"""register, clinic reports, reminders, certificates

Revision ID: health_mgmt_0001
Revises:
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'health_mgmt_0001'
down_revision = None
branch_labels = ('health_mgmt',)
depends_on = None


def upgrade() -> None:
    op.create_table('clinic_report_imports',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('encoding', sa.String(length=16), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('stored', sa.Integer(), nullable=False),
    sa.Column('refused', sa.Integer(), nullable=False),
    sa.Column('problems', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('committed_by', sa.String(length=128), nullable=False),
    sa.Column('committed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clinic_report_imports')),
    sa.UniqueConstraint('digest', name=op.f('uq_clinic_report_imports_digest'))
    )
    op.create_table('clinics',
    sa.Column('code', sa.String(length=10), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('in_city', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_clinics'))
    )
    op.create_table('reminder_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('people_evaluated', sa.Integer(), nullable=False),
    sa.Column('notices', sa.Integer(), nullable=False),
    sa.Column('items', sa.Integer(), nullable=False),
    sa.Column('already_sent', sa.Integer(), nullable=False),
    sa.Column('output', sa.Text(), nullable=True),
    sa.Column('started_by', sa.String(length=128), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reminder_runs'))
    )
    op.create_table('subjects',
    sa.Column('integrated_address_number', sa.String(length=15), nullable=False),
    sa.Column('resident_code', sa.String(length=11), nullable=True),
    sa.Column('voucher_number', sa.String(length=10), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('name_kana', sa.String(length=100), nullable=False),
    sa.Column('sex', sa.String(length=6), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('address', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('heart_kidney_respiratory_disability', sa.Boolean(), nullable=False),
    sa.Column('hiv_immune_disability', sa.Boolean(), nullable=False),
    sa.Column('hbv_perinatal_prophylaxis', sa.Boolean(), nullable=False),
    sa.Column('enrolled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("sex IN ('male', 'female')", name=op.f('ck_subjects_sex')),
    sa.CheckConstraint("status IN ('resident', 'moved_out', 'deceased', 'non_resident')", name=op.f('ck_subjects_status')),
    sa.PrimaryKeyConstraint('integrated_address_number', name=op.f('pk_subjects')),
    sa.UniqueConstraint('resident_code', name=op.f('uq_subjects_resident_code')),
    sa.UniqueConstraint('voucher_number', name=op.f('uq_subjects_voucher_number'))
    )
    with op.batch_alter_table('subjects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subjects_birth_date'), ['birth_date'], unique=False)

    op.create_table('certificates',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('certificate_number', sa.String(length=20), nullable=False),
    sa.Column('subject_number', sa.String(length=15), nullable=False),
    sa.Column('dose_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('issued_by', sa.String(length=128), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['subject_number'], ['subjects.integrated_address_number'], name=op.f('fk_certificates_subject_number_subjects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_certificates')),
    sa.UniqueConstraint('certificate_number', name=op.f('uq_certificates_certificate_number'))
    )
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_certificates_subject_number'), ['subject_number'], unique=False)

    op.create_table('doses',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('subject_number', sa.String(length=15), nullable=False),
    sa.Column('record_type', sa.String(length=32), nullable=False),
    sa.Column('dose_date', sa.Date(), nullable=False),
    sa.Column('examination_type', sa.String(length=16), nullable=False),
    sa.Column('product', sa.String(length=32), nullable=True),
    sa.Column('clinic_code', sa.String(length=10), nullable=True),
    sa.Column('billing_month', sa.String(length=7), nullable=True),
    sa.Column('commission_fee_yen', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('import_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('items', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('recorded_by', sa.String(length=128), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("examination_type IN ('inoculated', 'screening_only', 'test')", name=op.f('ck_doses_examination_type')),
    sa.CheckConstraint("source IN ('counter', 'clinic_report', 'transfer')", name=op.f('ck_doses_source')),
    sa.ForeignKeyConstraint(['clinic_code'], ['clinics.code'], name=op.f('fk_doses_clinic_code_clinics')),
    sa.ForeignKeyConstraint(['import_id'], ['clinic_report_imports.id'], name=op.f('fk_doses_import_id_clinic_report_imports')),
    sa.ForeignKeyConstraint(['subject_number'], ['subjects.integrated_address_number'], name=op.f('fk_doses_subject_number_subjects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_doses')),
    sa.UniqueConstraint('subject_number', 'record_type', 'dose_date', name='uq_doses_natural_key')
    )
    with op.batch_alter_table('doses', schema=None) as batch_op:
        batch_op.create_index('ix_doses_clinic_month', ['clinic_code', 'billing_month'], unique=False)
        batch_op.create_index(batch_op.f('ix_doses_import_id'), ['import_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_doses_subject_number'), ['subject_number'], unique=False)

    op.create_table('reminder_notices',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('subject_number', sa.String(length=15), nullable=False),
    sa.Column('series', sa.String(length=32), nullable=False),
    sa.Column('next_dose', sa.String(length=32), nullable=False),
    sa.Column('earliest', sa.Date(), nullable=True),
    sa.Column('recommended', sa.Date(), nullable=True),
    sa.Column('latest', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['reminder_runs.id'], name=op.f('fk_reminder_notices_run_id_reminder_runs')),
    sa.ForeignKeyConstraint(['subject_number'], ['subjects.integrated_address_number'], name=op.f('fk_reminder_notices_subject_number_subjects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reminder_notices')),
    sa.UniqueConstraint('subject_number', 'series', 'next_dose', name='uq_reminder_notices_due_dose')
    )
    with op.batch_alter_table('reminder_notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reminder_notices_run_id'), ['run_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('reminder_notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reminder_notices_run_id'))

    op.drop_table('reminder_notices')
    with op.batch_alter_table('doses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_doses_subject_number'))
        batch_op.drop_index(batch_op.f('ix_doses_import_id'))
        batch_op.drop_index('ix_doses_clinic_month')

    op.drop_table('doses')
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_certificates_subject_number'))

    op.drop_table('certificates')
    with op.batch_alter_table('subjects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subjects_birth_date'))

    op.drop_table('subjects')
    op.drop_table('reminder_runs')
    op.drop_table('clinics')
    op.drop_table('clinic_report_imports')
