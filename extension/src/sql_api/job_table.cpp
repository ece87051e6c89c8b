#include "sql_api/job_table.h"

extern "C" {
#include "access/tupdesc.h"
#include "utils/rel.h"
}

namespace jobq::sql {

bool JobTableIsJobqs(Relation job) {
    TupleConstr *constr = RelationGetDescr(job)->constr;
    return job->trigdesc == nullptr && job->rd_rules == nullptr && !job->rd_rel->relrowsecurity &&
           !job->rd_rel->relispartition && constr != nullptr && !constr->has_generated_stored &&
           constr->num_check == 1 && strcmp(constr->check[0].ccname, "job_row_valid") == 0;
}

}  // namespace jobq::sql
